"""Packing real renders into shards: round trip, reproducibility, SIE files, bad input, resume."""

import json
import shutil
import tarfile

import numpy as np
import pytest
import webdataset as wds
from PIL import Image

from iebench.dataset import format as fmt
from iebench.dataset.pack import PackError, PackOptions, pack
from iebench.dataset.reader import ShardSet
from iebench.dataset.verify import verify
from iebench.object_lists import read_object_list


def test_round_trip_every_byte_and_latent(tiny_render, packed):
    job, _ = tiny_render
    out, info = packed
    assert info["splits"]["train"]["objects"] + info["splits"]["val"]["objects"] == len(job.objects)
    assert len(info["splits"]["train"]["shards"]) >= 2
    seen = set()
    for split in fmt.SPLITS:
        for ref in ShardSet(out).samples(split):
            synset, model_id = ref.synset, ref.model_id
            folder = job.out / synset / model_id
            for view in range(job.views):
                assert ref.read(fmt.view_field(view)) == (folder / f"image_{view}.jpg").read_bytes()
            expected = np.stack([np.load(folder / f"latent_{v}.npy") for v in range(job.views)])
            assert np.array_equal(ref.latents(), expected)
            seen.add(ref.key)
    assert len(seen) == len(job.objects)


def test_shards_read_with_webdataset(packed):
    out, info = packed
    urls = [str(out / s["name"]) for s in info["splits"]["train"]["shards"]]
    samples = list(wds.WebDataset(urls, shardshuffle=False))
    assert [s["__key__"] for s in samples] == [k for s in info["splits"]["train"]["shards"] for k in s["keys"]]
    sample = samples[0]
    assert set(sample) >= {"000.jpg", "003.jpg", "latents.npy", "cls", "json"}
    meta = json.loads(sample["json"])
    assert meta["views"] == 4 and meta["latent_names"][0] == "rot_x"
    assert int(sample["cls"]) == next(c["label"] for c in info["classes"] if c["synset"] == meta["synset"])
    with tarfile.open(urls[0]) as tar:
        members = tar.getmembers()
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.uname == "" for m in members)
    names = [m.name.partition(".")[2] for m in members if m.name.startswith(sample["__key__"])]
    assert names == sorted(names)


def test_two_packs_are_byte_identical(tiny_render, packed, tmp_path):
    job, _ = tiny_render
    out, info = packed
    again, _ = pack(job.out, tmp_path, PackOptions(name="tiny", shard_size_mb=0.004, workers=1))
    for split in fmt.SPLITS:
        for shard in info["splits"][split]["shards"]:
            assert (tmp_path / shard["name"]).read_bytes() == (out / shard["name"]).read_bytes()
    for name in ("SHA256SUMS", "README.md", "train_images.npy", "all_latents_val.npy"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()


def test_sie_split_files_follow_the_original_format(tiny_render, packed, tmp_path):
    job, _ = tiny_render
    out, info = packed
    labels = {c["synset"]: c["label"] for c in info["classes"]}
    assert sorted(labels.values()) == list(range(len(labels))) and list(labels) == sorted(labels)
    for split in fmt.SPLITS:
        images = np.load(out / f"{split}_images.npy")
        assert all(s.startswith("/") and s.endswith("/") and s.count("/") == 3 for s in images.tolist())
        objects = read_object_list(out / f"{split}_images.npy")
        assert np.array_equal(np.load(out / f"{split}_labels.npy"), [labels[s] for s, _ in objects])
        latents = np.load(out / f"all_latents_{split}.npy")
        assert latents.shape == (len(objects) * job.views, 7) and latents.dtype == np.float64
        for i, (synset, model_id) in enumerate(objects):  # object-major, views in order
            for view in range(job.views):
                assert np.array_equal(latents[i * job.views + view], np.load(job.out / synset / model_id / f"latent_{view}.npy"))
    # ... and the original split files can be given back to pack
    again, _ = pack(job.out, tmp_path / "again", PackOptions(name="tiny", split_files=out, workers=1))
    import shutil

    shutil.copytree(out, tmp_path / "splits")  # the same split files at another path: the same pack, which resumes
    pack(job.out, tmp_path / "again", PackOptions(name="tiny", split_files=tmp_path / "splits", workers=1))
    for split in fmt.SPLITS:
        assert sorted(k for s in again["splits"][split]["shards"] for k in s["keys"]) == sorted(
            k for s in info["splits"][split]["shards"] for k in s["keys"]
        )


def test_card_reads_on_its_own(packed):
    out, info = packed
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlicense: cc0-1.0\n")  # procedural objects
    assert "- split: validation" in card and 'path: "tiny-val-*.tar"' in card
    assert "| 3 | `floor_hue` | [0, 1] | floor colour HSV(h, 0.6, 0.6) |" in card and "Garrido" in card and "generated" in card
    # the scene as the render manifest recorded it, not as the card's code assumes it
    assert "Scene: camera at distance 2.5 (polar angle pi/4, azimuth pi/2); floor plane at z = -1;" in card
    assert "spot light 500 W, cone pi/8; Filmic view transform." in card


def copy_render(tiny_render, tmp_path):
    job, _ = tiny_render
    src = tmp_path / "src"
    shutil.copytree(job.out, src)
    return src, job.objects[0]


def test_missing_view_or_bad_latents_stop_before_writing(tiny_render, tmp_path):
    src, ref = copy_render(tiny_render, tmp_path)
    with pytest.raises(PackError, match="is not empty and holds no shard set"):
        pack(src, src, PackOptions(workers=1))  # into its own input
    (tmp_path / "killed").mkdir()
    (tmp_path / "killed" / "_part.json.tmp-999999999").write_text("{")  # a pack killed while it wrote its plan
    folder = src / ref.synset / ref.model_id
    (folder / "latent_2.npy").unlink()
    np.save(folder / "latent_1.npy", np.zeros(5))
    with pytest.raises(PackError, match=f"{ref.synset}/{ref.model_id}") as error:
        pack(src, tmp_path / "out", PackOptions(workers=1))
    assert "nothing was written" in str(error.value)
    other = next(o for o in tiny_render[0].objects if o != ref)
    np.save(src / other.synset / other.model_id / "latent_0.npy", np.full(7, np.nan))  # would reach training as a NaN loss
    with pytest.raises(PackError, match="2 objects cannot be packed") as error:
        pack(src, tmp_path / "out", PackOptions(workers=1))
    assert f"{other.key}: latent_0.npy holds NaN or infinite values" in error.value.details
    np.save(src / other.synset / other.model_id / "latent_0.npy", np.load(src / other.synset / other.model_id / "latent_1.npy"))
    assert not (tmp_path / "out").exists()
    (folder / "image_3.jpg").unlink()
    _, skipped = pack(src, tmp_path / "killed", PackOptions(workers=1, skip_bad=True))  # its own leftovers are removed
    assert [why.split(":")[0] for why in skipped] == [ref.key]
    assert verify(tmp_path / "killed", progress=False) == []
    for latent in src.glob("*/*/latent_0.npy"):
        np.save(latent, np.zeros(5))  # every object bad: --skip-bad leaves nothing
    with pytest.raises(PackError, match="every object has a problem"):
        pack(src, tmp_path / "out3", PackOptions(workers=1, skip_bad=True))
    assert not (tmp_path / "out3").exists()


def test_skip_bad_skips_an_unreadable_latent_file_of_the_first_object(tiny_render, tmp_path):
    from iebench.dataset.loose import list_objects

    src, _ = copy_render(tiny_render, tmp_path)
    first = list_objects(src)[0]
    (first.folder / "latent_0.npy").write_bytes(b"not a numpy file")
    with pytest.raises(PackError, match=f"{first.key}: latent_0.npy is not a .npy file"):
        pack(src, tmp_path / "out", PackOptions(workers=1))
    _, skipped = pack(src, tmp_path / "out", PackOptions(workers=1, skip_bad=True))
    assert [why.split(":")[0] for why in skipped] == [first.key]


def test_corrupt_jpeg_names_the_object_and_a_rerun_resumes(tiny_render, tmp_path):
    src, ref = copy_render(tiny_render, tmp_path)
    image = src / ref.synset / ref.model_id / "image_1.jpg"
    good = image.read_bytes()
    image.write_bytes(good[: len(good) // 2])  # truncated
    out = tmp_path / "out"
    with pytest.raises(PackError, match=f"{ref.synset}/{ref.model_id}: image_1.jpg is not a readable JPEG"):
        pack(src, out, PackOptions(workers=2, shard_size_mb=0.004))
    assert not (out / fmt.INFO_NAME).exists() and not list(out.glob("*.tmp-*"))
    written = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tar")}
    assert written  # the other shards are complete
    image.write_bytes(good)
    info, _ = pack(src, out, PackOptions(workers=2, shard_size_mb=0.004))
    assert all(out.joinpath(n).stat().st_mtime_ns == t for n, t in written.items())  # never rewritten
    assert verify(out, progress=False) == []
    assert info["splits"]["train"]["objects"] + info["splits"]["val"]["objects"] == 6


def test_skip_bad_skips_an_object_whose_jpeg_or_pass_does_not_decode(tiny_render, tmp_path):
    src, ref = copy_render(tiny_render, tmp_path)
    image = src / ref.synset / ref.model_id / "image_1.jpg"
    image.write_bytes(image.read_bytes()[:200])  # truncated: only decoding finds it
    info, skipped = pack(src, tmp_path / "out", PackOptions(workers=2, skip_bad=True))
    assert len(skipped) == 1 and skipped[0].startswith(f"{ref.synset}/{ref.model_id}: image_1.jpg is not a readable JPEG")  # and why
    assert info["splits"]["train"]["objects"] + info["splits"]["val"]["objects"] == 5
    assert verify(tmp_path / "out", progress=False) == []


def test_other_options_into_the_same_folder_are_refused(tiny_render, packed):
    job, _ = tiny_render
    out, _ = packed
    with pytest.raises(PackError, match="other input or options"):
        pack(job.out, out, PackOptions(name="tiny", shard_size_mb=0.004, shard_seed=9))


def test_the_same_objects_with_other_views_are_refused_in_a_finished_pack(tiny_render, packed, tmp_path):
    src, _ = copy_render(tiny_render, tmp_path)
    for extra in [*src.glob("*/*/image_[23].jpg"), *src.glob("*/*/latent_[23].npy")]:
        extra.unlink()  # 2 views of the same objects: the same shard plan, other data
    out = tmp_path / "out"
    shutil.copytree(packed[0], out)
    with pytest.raises(PackError, match="other input or options"):
        pack(src, out, PackOptions(name="tiny", shard_size_mb=0.004, workers=1))
    assert verify(out, progress=False) == []  # untouched


def test_info_and_show_commands(packed, tmp_path):
    from click.testing import CliRunner

    from iebench.cli import main

    out, _ = packed
    result = CliRunner().invoke(main, ["info", str(out)])
    assert result.exit_code == 0 and "airplane" in result.output and "train:" in result.output
    result = CliRunner().invoke(main, ["show", str(out), "--split", "val", "--out", str(tmp_path / "s.png")])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "s.png").height >= 3 * 128
    result = CliRunner().invoke(main, ["verify", str(out)])
    assert result.exit_code == 0 and "verified" in result.output


def test_load_npy_reads_what_numpy_writes_and_refuses_a_cut_file(tmp_path):
    from iebench.dataset.loose import load_npy

    arrays = [np.arange(7, dtype=np.float64), np.ones((2, 3), np.float32), np.asfortranarray(np.arange(6.0).reshape(2, 3))]
    for number, array in enumerate(arrays * 2):  # twice: the second time each header comes from the cache
        path = tmp_path / f"a{number}.npy"
        np.save(path, array)
        loaded = load_npy(path)
        assert loaded.dtype == array.dtype and np.array_equal(loaded, array)
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(ValueError, match="bytes of data"):
        load_npy(path)
