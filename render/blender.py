"""The Blender renderer: the only module that imports bpy.

It mirrors `iebench.render.scene` into a Blender scene once per worker process, imports one object
at a time (normalised as ShapeNet's are), and renders the views it is given. SPEC 1a lists the
traps this module handles: the OBJ importer's axis rotation, node-less floor colours, AgX vs Filmic,
missing textures, and data that piles up across objects.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix
from PIL import Image

from iebench import scene_constants as constants
from iebench.passes import PASSES
from iebench.render import scene as spec
from iebench.render.exr import read_exr_channels
from iebench.render.objects import NATIVE_SUFFIXES
from iebench.render.settings import RenderSettings

_DENOISE_QUALITY = {"fast": "FAST", "balanced": "BALANCED", "high": "HIGH"}


class MeshError(Exception):
    """An object that cannot be rendered; the message says why."""


@dataclass
class LoadedObject:
    """An imported, normalised object in the scene, and what was noticed while importing it."""

    obj: bpy.types.Object
    faces: int
    warnings: list[str] = field(default_factory=list)


def bpy_version() -> str:
    """The Blender version string (for manifests)."""
    return bpy.app.version_string


def _use_gpu() -> bool:
    """Enable every CUDA/OptiX/HIP/oneAPI/Metal device Cycles finds; False when there is none."""
    preferences = bpy.context.preferences.addons["cycles"].preferences
    for backend in ("OPTIX", "CUDA", "HIP", "ONEAPI", "METAL"):
        try:
            preferences.compute_device_type = backend
        except TypeError:
            continue
        preferences.get_devices()
        gpus = [d for d in preferences.devices if d.type != "CPU"]
        if gpus:
            for device in preferences.devices:
                device.use = device.type != "CPU"
            return True
    return False


def _configure_cycles(scene: bpy.types.Scene, settings: RenderSettings, threads: int) -> str:
    """Set every render value explicitly (bpy's defaults differ from the recipe); returns the device used."""
    scene.render.engine = "CYCLES"
    cycles = scene.cycles
    device = "CPU"
    if settings.device in ("gpu", "auto") and _use_gpu():
        device = "GPU"
    elif settings.device == "gpu":
        raise RuntimeError("--device gpu: Cycles found no GPU (CUDA, OptiX, HIP, oneAPI or Metal)")
    cycles.device = device
    cycles.samples = settings.samples
    cycles.use_adaptive_sampling = settings.adaptive_sampling
    cycles.adaptive_threshold = settings.adaptive_threshold
    cycles.use_denoising = settings.denoiser != "off"
    if settings.denoiser != "off":
        cycles.denoiser = "OPENIMAGEDENOISE"
        cycles.denoising_input_passes = "RGB_ALBEDO_NORMAL"
        cycles.denoising_prefilter = settings.denoiser_prefilter.upper()
        cycles.denoising_quality = _DENOISE_QUALITY[settings.denoiser]
    cycles.max_bounces = 3
    cycles.diffuse_bounces = 3
    cycles.glossy_bounces = 0
    cycles.transmission_bounces = 0
    cycles.transparent_max_bounces = 8
    cycles.volume_bounces = 0
    cycles.sample_clamp_indirect = 10.0
    cycles.sample_clamp_direct = 0.0
    cycles.use_light_tree = False  # Blender 3.3 had none; it costs ~20 % here for no gain (SPEC 1b)
    cycles.pixel_filter_type = "BLACKMAN_HARRIS"
    cycles.filter_width = 1.5
    cycles.seed = 0
    scene.render.use_persistent_data = True
    if threads > 0:
        scene.render.threads_mode = "FIXED"
        scene.render.threads = threads
    scene.render.resolution_x = scene.render.resolution_y = settings.resolution
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = False
    scene.view_settings.view_transform = constants.VIEW_TRANSFORM
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    _png_output(scene.render.image_settings)
    return device


def _png_output(image: bpy.types.ImageFormatSettings) -> None:
    """The render's own output: 8-bit RGB PNG through the view transform (the JPEG is encoded from it)."""
    image.media_type = "IMAGE"
    image.file_format = "PNG"
    image.color_mode = "RGB"
    image.color_depth = "8"
    image.compression = 0


def _passes_output(image: bpy.types.ImageFormatSettings) -> None:
    """Every pass of the view layer in one file that `render.exr` reads: single-part, 32-bit, uncompressed."""
    image.media_type = "MULTI_LAYER_IMAGE"
    image.file_format = "OPEN_EXR_MULTILAYER"
    image.color_depth = "32"
    image.exr_codec = "NONE"
    image.use_exr_interleave = True


# Which view-layer pass each rendered pass of `iebench.passes` needs, and the EXR channels it is read from.
_VIEW_LAYER_PASS = {"depth": "use_pass_z", "normal": "use_pass_normal", "mask": "use_pass_object_index"}
_CHANNELS = {"depth": ("Depth.Z",), "normal": ("Normal.X", "Normal.Y", "Normal.Z"), "mask": ("Object Index.X",)}
OBJECT_PASS_INDEX = 1  # the object's index in the object index pass (the floor's is 0)


def _diffuse_material(name: str) -> tuple[bpy.types.Material, bpy.types.NodeSocket]:
    """A material with one Diffuse BSDF; returns it and the colour socket to drive per view."""
    material = bpy.data.materials.new(name)  # Blender 5 gives every new material a node tree
    nodes = material.node_tree.nodes
    nodes.clear()
    bsdf = nodes.new("ShaderNodeBsdfDiffuse")
    output = nodes.new("ShaderNodeOutputMaterial")
    material.node_tree.links.new(bsdf.outputs["BSDF"], output.inputs["Surface"])
    return material, bsdf.inputs["Color"]


def _set_matrix(obj: bpy.types.Object, rotation: np.ndarray, location) -> None:
    matrix = Matrix(np.asarray(rotation).tolist()).to_4x4()
    matrix.translation = tuple(location)
    obj.matrix_world = matrix


class SceneRenderer:
    """One Blender scene per worker process: build once, then load objects and render their views."""

    def __init__(self, settings: RenderSettings, threads: int = 0, passes: tuple[str, ...] = ()) -> None:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        self.settings = settings
        self.scene = bpy.context.scene
        self.device = _configure_cycles(self.scene, settings, threads)
        self.set_passes(passes)
        self._build_world()
        self._build_camera()
        self._build_floor()
        self._build_lights()
        self._tmpdir = tempfile.TemporaryDirectory(prefix="iebench-render-", dir=_fast_tmp())

    def set_passes(self, passes: tuple[str, ...]) -> None:
        """Choose the passes of the next renders (names of `iebench.passes`): only those are computed."""
        self.passes = tuple(passes)
        for name, flag in _VIEW_LAYER_PASS.items():
            setattr(self.scene.view_layers[0], flag, name in self.passes)

    def _build_world(self) -> None:
        world = bpy.data.worlds.new("World")
        background = world.node_tree.nodes.get("Background") or world.node_tree.nodes.new("ShaderNodeBackground")
        background.inputs["Color"].default_value = (constants.WORLD_GREY, constants.WORLD_GREY, constants.WORLD_GREY, 1.0)
        background.inputs["Strength"].default_value = 1.0
        output = world.node_tree.nodes.get("World Output") or world.node_tree.nodes.new("ShaderNodeOutputWorld")
        world.node_tree.links.new(background.outputs["Background"], output.inputs["Surface"])
        self.scene.world = world

    def _build_camera(self) -> None:
        data = bpy.data.cameras.new("Camera")
        data.lens = constants.CAMERA_LENS_MM
        data.sensor_width = constants.CAMERA_SENSOR_MM
        data.sensor_fit = "AUTO"
        data.clip_start, data.clip_end = constants.CAMERA_CLIP
        camera = bpy.data.objects.new("Camera", data)
        self.scene.collection.objects.link(camera)
        _set_matrix(camera, spec.CAMERA_ROTATION, spec.CAMERA_LOCATION)
        self.scene.camera = self.camera = camera

    def _build_floor(self) -> None:
        half = constants.FLOOR_SIZE / 2
        mesh = bpy.data.meshes.new("Floor")
        mesh.from_pydata([(-half, -half, 0), (half, -half, 0), (half, half, 0), (-half, half, 0)], [], [(0, 1, 2, 3)])
        floor = bpy.data.objects.new("Floor", mesh)
        floor.location = (0, 0, constants.FLOOR_Z)
        material, self.floor_colour = _diffuse_material("FloorMaterial")
        mesh.materials.append(material)
        self.scene.collection.objects.link(floor)

    def _build_lights(self) -> None:
        sun_data = bpy.data.lights.new("Sun", type="SUN")
        sun_data.energy = constants.SUN_ENERGY
        sun_data.angle = constants.SUN_ANGLE
        sun_data.color = (1.0, 1.0, 1.0)
        sun = bpy.data.objects.new("Sun", sun_data)  # identity rotation: shines straight down (-Z)
        self.scene.collection.objects.link(sun)
        spot_data = bpy.data.lights.new("Spot", type="SPOT")
        spot_data.energy = constants.SPOT_ENERGY
        spot_data.spot_size = constants.SPOT_SIZE
        spot_data.spot_blend = constants.SPOT_BLEND
        spot_data.shadow_soft_size = constants.SPOT_RADIUS
        self.spot = bpy.data.objects.new("Spot", spot_data)
        self.scene.collection.objects.link(self.spot)

    def load(self, mesh_path: Path, max_faces: int) -> LoadedObject:
        """Import a mesh with Blender's own importer (`NATIVE_SUFFIXES`), join its parts and normalise it like ShapeNet's.

        OBJ, PLY and STL are read Y-up, -Z front, as ShapeNet's OBJ; glTF is Y-up by definition and its
        importer turns it Z-up itself, so an object and its glTF twin land in the same pose.
        """
        mesh_path = Path(mesh_path)
        before = set(bpy.data.objects)
        try:
            _import(mesh_path)
        except RuntimeError as error:
            self._remove(set(bpy.data.objects) - before)
            raise MeshError(f"Blender could not import {mesh_path}: {str(error).strip()}") from None
        imported = set(bpy.data.objects) - before
        meshes = sorted((o for o in imported if o.type == "MESH" and len(o.data.vertices) > 0), key=lambda o: o.name)
        _bake_transforms(meshes)  # before the parents (glTF nodes, empties) go: they hold part of the transform
        self._remove(imported - set(meshes))  # a glTF's own cameras and lights too
        self.scene.camera = self.camera  # in case an importer made one of its cameras the scene's
        if not meshes:
            raise MeshError(f"{mesh_path} holds no mesh with vertices (empty or not a {mesh_path.suffix.lstrip('.').upper()} file)")
        faces = sum(len(o.data.polygons) for o in meshes)
        if faces > max_faces:
            self._remove(set(meshes))
            raise MeshError(f"{mesh_path} has {faces:,} faces, more than --max-faces {max_faces:,}")
        warnings = _missing_material_libraries(mesh_path) + _repair_textures(meshes, mesh_path)
        _drop_transmission(meshes)
        _show_vertex_colours(meshes)
        obj = _join(meshes)
        _normalise(obj)
        obj.pass_index = OBJECT_PASS_INDEX
        return LoadedObject(obj, faces, warnings)

    def render_view(self, loaded: LoadedObject, view: spec.ViewScene) -> np.ndarray:
        """Render one view of the loaded object; returns an (H, W, 3) uint8 RGB array."""
        return self.render_passes(loaded, view)[0]

    def render_passes(self, loaded: LoadedObject, view: spec.ViewScene) -> tuple[np.ndarray, dict]:
        """Render one view: (H, W, 3) uint8 RGB, and the renderer's array of each of its passes from the same render.

        depth: (H, W) planar depth in metres; normal: (H, W, 3) unit normals in the OpenCV camera frame;
        mask: (H, W) bool; camera: the view's camera record. Without passes the image is written as it
        always was (one PNG); with passes the render writes a multilayer EXR, and the RGB image is saved
        from the same render result with the same settings (the same bytes).
        """
        self._pose(loaded, view)
        rgb_path = os.path.join(self._tmpdir.name, "view.png")
        if not any(PASSES[name].rendered for name in self.passes):
            self.scene.render.filepath = rgb_path
            bpy.ops.render.render(write_still=True)
            return _read_rgb(rgb_path), self._records(view)
        image = self.scene.render.image_settings
        exr_path = os.path.join(self._tmpdir.name, "view.exr")
        _passes_output(image)
        try:
            self.scene.render.filepath = exr_path
            bpy.ops.render.render(write_still=True)
        finally:
            _png_output(image)
        bpy.data.images["Render Result"].save_render(rgb_path)
        channels = {name.split(".", 1)[1]: array for name, array in read_exr_channels(exr_path).items()}
        raw = {name: np.stack([channels[c] for c in _CHANNELS[name]], axis=-1) for name in self.passes if name in _CHANNELS}
        arrays = self._records(view)
        if "depth" in raw:
            arrays["depth"] = raw["depth"][..., 0]
        if "normal" in raw:
            arrays["normal"] = spec.normals_to_camera(raw["normal"])
        if "mask" in raw:
            arrays["mask"] = np.rint(raw["mask"][..., 0]) == OBJECT_PASS_INDEX
        return _read_rgb(rgb_path), arrays

    def _records(self, view: spec.ViewScene) -> dict:
        """The passes that need no rendering (the camera record)."""
        return {"camera": spec.camera_record(view, self.settings.resolution)} if "camera" in self.passes else {}

    def _pose(self, loaded: LoadedObject, view: spec.ViewScene) -> None:
        loaded.obj.rotation_mode = "XYZ"
        loaded.obj.rotation_euler = view.object_rotation
        loaded.obj.location = view.object_location
        self.floor_colour.default_value = (*view.floor_rgb, 1.0)
        _set_matrix(self.spot, view.spot_rotation, view.spot_location)
        self.spot.data.color = view.spot_rgb

    def unload(self, loaded: LoadedObject) -> None:
        """Delete the object and purge what it brought (meshes, materials, images), so memory stays flat."""
        self._remove({loaded.obj})
        bpy.data.orphans_purge(do_local_ids=True, do_linked_ids=True, do_recursive=True)

    @staticmethod
    def _remove(objects: set) -> None:
        for obj in objects:
            bpy.data.objects.remove(obj, do_unlink=True)


def _read_rgb(path: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _fast_tmp() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def _import(mesh_path: Path) -> None:
    """Run the Blender importer of the mesh's format (raises RuntimeError when it fails)."""
    suffix = mesh_path.suffix.lower()
    if suffix not in NATIVE_SUFFIXES:
        raise MeshError(f"{mesh_path}: Blender has no importer for {suffix} files (convert it first)")
    path = str(mesh_path)
    if suffix == ".obj":
        bpy.ops.wm.obj_import(filepath=path, forward_axis="NEGATIVE_Z", up_axis="Y")
    elif suffix == ".ply":
        bpy.ops.wm.ply_import(filepath=path, forward_axis="NEGATIVE_Z", up_axis="Y", import_colors="SRGB")
    elif suffix == ".stl":
        bpy.ops.wm.stl_import(filepath=path, forward_axis="NEGATIVE_Z", up_axis="Y")
    else:  # glTF: Y-up by definition; the importer turns it Z-up
        bpy.ops.import_scene.gltf(filepath=path, import_shading="NORMALS", loglevel=50)


def _bake_transforms(meshes: list) -> None:
    """Bake each part's world transform into its own mesh data (the OBJ importer's Y-up to Z-up turn, glTF's node
    transforms), so that the view's rotation is the object's only transform.

    The OBJ importer puts the axis conversion into each object's rotation (pi/2, 0, 0); setting the
    view's rotation over it would lay every object on its side (SPEC 1a). A mesh that several glTF
    nodes share is copied first, so that each instance keeps its own placement.
    """
    for obj in meshes:
        if obj.data.users > 1:
            obj.data = obj.data.copy()
    for obj in meshes:
        matrix = obj.matrix_world.copy()
        obj.parent = None
        obj.data.transform(matrix)
        obj.matrix_world = Matrix.Identity(4)


def _join(meshes: list) -> bpy.types.Object:
    """Join the importer's parts (transforms already baked) into one object."""
    if len(meshes) > 1:
        with bpy.context.temp_override(active_object=meshes[0], selected_editable_objects=meshes, selected_objects=meshes):
            bpy.ops.object.join()
    return meshes[0]


def _normalise(obj: bpy.types.Object) -> None:
    """Centre the mesh on its bounding box and scale it to unit diagonal (ShapeNet's are already)."""
    count = len(obj.data.vertices)
    coords = np.empty(count * 3, dtype=np.float64)
    obj.data.vertices.foreach_get("co", coords)
    coords = coords.reshape(-1, 3)
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    diagonal = float(np.linalg.norm(hi - lo))
    if not math.isfinite(diagonal) or diagonal <= 0:
        raise MeshError(f"object has a degenerate bounding box (diagonal {diagonal})")
    # ShapeNet's normalised models have unit diagonal already: leave their scale untouched.
    scale = 1.0 if abs(diagonal - 1.0) < 1e-3 else 1.0 / diagonal
    centre = (lo + hi) / 2
    obj.data.transform(Matrix.Diagonal((scale, scale, scale, 1.0)) @ Matrix.Translation(-centre))
    obj.data.update()
    obj.location = (0.0, 0.0, 0.0)


def _drop_transmission(meshes: list) -> None:
    """Make imported materials opaque to transmission.

    Blender 4+'s OBJ importer turns an MTL's `Tf` (transmission filter, written as `Tf 1 1 1` by many
    exporters to mean "no filter") into Transmission Weight 1; with the recipe's zero transmission
    bounces such a surface renders black. The importer the original used ignored `Tf`.
    """
    for obj in meshes:
        for slot in obj.material_slots:
            if slot.material and slot.material.node_tree is not None:
                for node in slot.material.node_tree.nodes:
                    if node.type == "BSDF_PRINCIPLED":
                        node.inputs["Transmission Weight"].default_value = 0.0


def _find_texture(name: str, object_dir: Path) -> Path | None:
    """Look for a texture by file name under the object's folder (ShapeNet keeps them in images/), following linked
    folders (`iebench objects link` builds objects of links)."""
    wanted = name.lower()
    for folder, dirs, files in sorted(os.walk(object_dir, followlinks=True)):
        dirs.sort()
        for file in sorted(files):
            candidate = Path(folder) / file
            if file.lower() == wanted and candidate.is_file():
                return candidate
    return None


def _as_written(filepath: str, mesh_dir: Path) -> str:
    """A texture path as the model file wrote it: the OBJ importer joins even an absolute path onto the model's folder
    (`models//abs/tex.png`); Blender's relative `//` prefix is dropped too."""
    path = filepath.replace("\\", "/")
    for prefix in (str(mesh_dir) + "/", "//"):
        if path.startswith(prefix):
            path = path[len(prefix) :]
            break
    return path if path.startswith("/") else os.path.normpath(path)


def _missing_material_libraries(mesh_path: Path) -> list[str]:
    """An OBJ's `mtllib` files that are not there (Blender then renders the object grey without a word)."""
    if mesh_path.suffix.lower() != ".obj":
        return []
    with open(mesh_path, "rb") as file:
        names = [line.split(None, 1)[1].strip() for line in file if line.startswith(b"mtllib") and len(line.split(None, 1)) == 2]
    warnings = []
    for raw in names:
        name = raw.decode("utf-8", "replace")
        if not (mesh_path.parent / name.replace("\\", "/")).is_file():
            warnings.append(f"missing material library {name!r} (mtllib of {mesh_path.name}): rendered with default materials")
    return warnings


def _show_vertex_colours(meshes: list) -> None:
    """Give a part with vertex colours and no material one that shows them (PLY files carry colours, not materials)."""
    for obj in meshes:
        colours = obj.data.color_attributes
        if len(colours) == 0 or any(slot.material for slot in obj.material_slots):
            continue
        material = bpy.data.materials.new(f"{obj.name}-colours")
        nodes = material.node_tree.nodes
        attribute = nodes.new("ShaderNodeVertexColor")
        attribute.layer_name = colours[0].name
        bsdf = nodes.get("Principled BSDF") or nodes.new("ShaderNodeBsdfPrincipled")
        material.node_tree.links.new(attribute.outputs["Color"], bsdf.inputs["Base Color"])
        obj.data.materials.append(material)


def _texture_problem(image: bpy.types.Image, mesh_path: Path, object_dir: Path) -> str | None:
    """Why an image cannot be used (None when it can): point a stale path at the file of the same name first."""
    readable = _has_pixels
    if image.packed_file is None and image.source == "FILE":
        path = Path(bpy.path.abspath(image.filepath, start=str(mesh_path.parent)))
        if not path.is_file():
            found = _find_texture(Path(image.filepath.replace("\\", "/")).name, object_dir)
            if found is None:
                return f"missing texture {_as_written(image.filepath, mesh_path.parent)!r}"
            image.filepath = os.path.abspath(found)
            image.reload()  # the render loads it; in the background its size stays 0 until then, so probe a fresh copy
            readable = _file_has_pixels
    if not readable(image):
        shown = _as_written(image.filepath, mesh_path.parent) if image.filepath else image.name
        return f"unreadable texture {shown!r} ({'embedded image' if image.packed_file else 'file'} is not an image Blender can read)"
    return None


def _has_pixels(image: bpy.types.Image) -> bool:
    """Reading an image's size loads it: zero when its data cannot be decoded."""
    return image.size[0] > 0


def _file_has_pixels(image: bpy.types.Image) -> bool:
    """Whether the file an image points at decodes (a fresh copy is loaded, measured and dropped)."""
    probe = bpy.data.images.load(bpy.path.abspath(image.filepath), check_existing=False)
    try:
        return probe.size[0] > 0
    finally:
        bpy.data.images.remove(probe)


def _repair_textures(meshes: list, mesh_path: Path) -> list[str]:
    """Point textures with absolute or stale paths at the file beside the model; unlink the missing and unreadable ones.

    A texture that cannot be found or read renders as Blender's magenta; unlinking it leaves the
    material's own base colour (the MTL's Kd, glTF's baseColorFactor), and the object is reported
    with a warning. Every format goes through here (OBJ, glTF/GLB with its embedded images, PLY).
    """
    object_dir = mesh_path.parent.parent if mesh_path.parent.name == "models" else mesh_path.parent
    warnings = []
    materials = {slot.material for obj in meshes for slot in obj.material_slots if slot.material}
    for material in sorted(materials, key=lambda m: m.name):
        if material.node_tree is None:
            continue
        for node in list(material.node_tree.nodes):
            if node.type != "TEX_IMAGE" or node.image is None:
                continue
            problem = _texture_problem(node.image, mesh_path, object_dir)
            if problem is None:
                continue
            warnings.append(f"{problem} (material {material.name!r}): rendered with its base colour")
            for output in node.outputs:
                for link in list(output.links):
                    material.node_tree.links.remove(link)
    return list(dict.fromkeys(warnings))  # an image used by several nodes of a material is named once
