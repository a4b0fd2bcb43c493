"""Reading numbers out of an evaluation report."""

from iebench.baselines.results import not_applicable, result_value, run_label


def test_a_value_is_read_by_its_path_and_none_where_it_is_not_there():
    results = {
        "rotation": {"r2_sie": 0.8, "train_fit": {"r2_per_output": 0.3}},
        "colour": {"r2_by_output": [0.9, 0.5]},
        "mrr": {"not_applicable": "vicreg has no predictor"},
    }
    assert result_value(results, "rotation", "r2_sie") == 0.8
    assert result_value(results, "rotation", "train_fit", "r2_per_output") == 0.3
    assert result_value(results, "colour", "r2_by_output", 1) == 0.5
    assert result_value(results, "colour", "r2_by_output", 2) is None
    assert result_value(results, "mrr", "val->val", "mrr") is None and not_applicable(results, "mrr") == "vicreg has no predictor"
    assert result_value(results, "classification", "all", "top1") is None and not_applicable(results, "classification") is None


def test_an_untrained_floor_is_labelled_so():
    assert run_label({"run": "/x/runs/sie", "random_init": True}) == "sie (untrained)"
    assert run_label({"run": "/x/runs/sie", "random_init": False}) == "sie"


def test_a_table_says_once_why_cells_are_n_a():
    from iebench.baselines.eval_report import markdown_table

    results = {"mrr": {"not_applicable": "vicreg has no predictor"}, "pre": {"not_applicable": "vicreg has no predictor"}}
    reports = [
        {"run": f"/x/{name}", "method": "vicreg", "random_init": floor, "results": results} for name, floor in [("vicreg", False)] * 2
    ]
    reports[1]["random_init"] = True
    table = markdown_table(reports)
    assert table.count("n/a for") == 1 and "- n/a for vicreg, vicreg (untrained) (MRR, PRE): vicreg has no predictor" in table


def test_an_empty_latents_member_is_named_not_a_traceback():
    import pytest

    from iebench.dataset import format as fmt

    with pytest.raises(fmt.ShardFormatError, match=r"s.tar: object k: member k.latents.npy is not a numpy array"):
        fmt.decode_latents(b"", "k", "s.tar")
