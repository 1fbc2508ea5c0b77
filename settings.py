"""Every user setting of photo3d, declared once: name, type, default, range, choices, help.

The panel's property group (``properties.py``), the command line (``cli.py``) and the
options the pipeline and the scene builder take are all derived from ``SETTINGS``, so
the panel's defaults are the command line's by construction. No ``bpy`` here: the CLI
and the background thread import it too.

Values are kept in Blender's units: angles in radians (the command line reads degrees),
percentages as percent.
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from .inference import camera_path
from .inference.depth import DEFAULT_MODEL, MODELS
from .inference.depth.tiling import MAX_TILES
from .inference.photo import DEFAULT_HFOV_DEG

# Panel sections (and CLI help groups).
PHOTO, PATH, EFFECTS_GROUP, RENDER = "photo", "path", "effects", "render"
# What a change in the panel rebuilds at once.
REANIMATE, REBUILD_EFFECTS, RESIZE = "path", "effects", "size"



@dataclass(frozen=True)
class Setting:
    name: str                      # property of scene.photo3d, option attribute, --flag-with-dashes
    default: Any
    label: str
    help: str
    group: str
    kind: str = ""                 # bool, int, float, enum, flags (a set of choices), angle, percent, colour,
    #                                size, path; "" = from default
    choices: tuple | Callable[[], tuple] = ()   # (id, label, help); a callable for lists that change
    min: float | None = None
    max: float | None = None
    soft_max: float | None = None
    open_choices: bool = False     # the CLI also takes a name or folder not in ``choices``
    flag: str | None = ""          # "": --name-with-dashes; None: not on the command line
    on_panel: bool = True          # a property of scene.photo3d
    in_preferences: bool = False   # a property of the extension's preferences (one per Blender, not per scene)
    update: str = ""               # REANIMATE / REBUILD_EFFECTS / RESIZE
    commands: tuple[str, ...] = ("make",)
    metavar: str = ""              # the CLI's name for the value
    parse: Callable[[str], Any] | None = None   # the CLI's reading of a value (raises ValueError)

    @property
    def type(self) -> str:
        if self.kind:
            return self.kind
        return {bool: "bool", int: "int", float: "float"}.get(type(self.default), "str")

    @property
    def cli_flag(self) -> str | None:
        if self.flag is None:
            return None
        return self.flag or "--" + self.name.replace("_", "-")

    def choice_ids(self) -> tuple[str, ...]:
        items = self.choices() if callable(self.choices) else self.choices
        return tuple(c[0] for c in items)

    def items(self) -> tuple:
        return self.choices() if callable(self.choices) else self.choices


def _model_choices() -> tuple:
    return tuple((m.name, m.name.replace("-", " ").title(), f"{m.summary}. Licence: {m.licence}")
                 for m in MODELS.values())


def _inpainter_choices() -> tuple:
    from .inference.inpaint_net import CLASSICAL, INPAINTERS
    return ((CLASSICAL, "Classical", "From the background around it, by depth; offline and fast"),
            *((m.name, m.label, f"{m.summary}. Downloaded on first use ({m.size_mb} MB, {m.licence})")
              for m in INPAINTERS.values()))


def _tile_choices() -> tuple:
    runs = {2: 5, 3: 7, 4: 13}
    many = [(str(n), f"{n} Tiles", f"{n} tiles along the long side, plus the whole photo"
             + (f" ({runs[n]} model runs for a 3:2 photo)" if n in runs else "")) for n in range(2, MAX_TILES + 1)]
    return (("off", "Off", "Run the depth model once on the whole photo (fastest)"),
            ("auto", "Automatic", "For large photos: the whole photo for the layout, plus as many overlapping "
                                  "tiles as bring the depth up to the mesh's resolution (none for small photos)"),
            *many)


def _parse_tiles(text: str) -> str:
    t = text.strip().lower()
    if t in ("off", "0", "1", "none"):
        return "off"
    if t == "auto":
        return "auto"
    try:
        n = int(t)
    except ValueError:
        raise ValueError(f"expected off, auto or a number of tiles (2-{MAX_TILES}), not {text!r}") from None
    if not 2 <= n <= MAX_TILES:
        raise ValueError(f"{n} tiles is out of range (2-{MAX_TILES})")
    return str(n)


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size must look like 1280x720, not {text!r}") from None
    if not (2 <= w <= 16384 and 2 <= h <= 16384):
        raise ValueError(f"size {text} is out of range (2..16384)")
    return w, h


def _output_choices() -> tuple:
    from .scene.outputs import OUTPUT_WRITERS
    return tuple((w.name, w.label, f"{w.help}: {w.filename}") for w in OUTPUT_WRITERS.values())


def _output_files() -> tuple:
    from .scene.outputs import OUTPUT_WRITERS
    return tuple((w.name, w.filename) for w in OUTPUT_WRITERS.values())


def _parse_outputs(text: str) -> tuple[str, ...]:
    from .scene.outputs import parse_outputs
    return parse_outputs(text)


# Social formats: (width, height) at 1080 px on the short side.
ASPECT_SIZES = {"16:9": (1920, 1080), "9:16": (1080, 1920), "1:1": (1080, 1080), "4:5": (1080, 1350)}
ASPECT_CHOICES = (("photo", "Photo", "The photo's own aspect, 1080 px on the long side"),
                  *((k, k, f"{w}x{h}") for k, (w, h) in ASPECT_SIZES.items()))


_PATH_CHOICES = {
    "dolly-zoom": ("Dolly Zoom", "Dolly back while zooming in: the subject keeps its size, the background swells"),
    "zoom-in": ("Zoom In", "Move towards the subject"),
    "circle": ("Circle", "Circle around the view axis, looking at the subject (seamless loop)"),
    "swing": ("Swing", "Swing from side to side, looking at the subject (seamless loop)"),
    "ken-burns": ("Ken Burns", "Pan across while moving in"),
    "vertical": ("Vertical", "Move up and down, looking at the subject (seamless loop)"),
    "orbit": ("Orbit", "Turn around the subject (seamless loop)"),
    "sway": ("Sway", "Gentle hand-held wobble (seamless loop)"),
    "auto": ("Automatic", "A loop turned and sized for the most parallax that reveals no more than "
                          "Max Reveal of the frame behind the subject"),
}
PARTICLE_KINDS = ("dust", "snow", "fireflies", "bokeh")
# The CLI's --effects names: each switches on settings of the Effects section.
EFFECTS = ("fog", "rain", "splashes", *PARTICLE_KINDS, "dof")
EFFECT_SETTINGS: dict[str, dict[str, Any]] = {
    "fog": {"fog": True}, "rain": {"rain": True}, "splashes": {"rain": True, "rain_splashes": True},
    "dof": {"dof": True}, **{k: {"particles": k} for k in PARTICLE_KINDS}}

S = Setting
SETTINGS: tuple[Setting, ...] = (
    # --- chosen before making a 3D photo: the pipeline's inputs -------------------------------
    S("depth_model", DEFAULT_MODEL, "Depth",
      "How depth is estimated (`python -m photo3d models` lists them); the best download is "
      "depth-anything-v2-small (99 MB, no PyTorch)",
      PHOTO, kind="enum", choices=_model_choices, open_choices=True, commands=("make", "depth", "bench")),
    S("depth_tiles", "off", "Detail Tiles",
      "Sharper depth for large photos: the model also runs on overlapping tiles of the full-size photo, aligned "
      "to and blended with its view of the whole (slower)", PHOTO, kind="enum", choices=_tile_choices,
      parse=_parse_tiles, commands=("make", "depth", "bench")),
    S("fov", 0.0, "Field of View",
      f"Horizontal field of view of the photo in degrees; 0: from the photo's EXIF focal length, else the depth "
      f"model's estimate, else {DEFAULT_HFOV_DEG:g}", PHOTO, min=0.0, max=170.0),
    S("portrait", True, "Portrait Refinement",
      "Find people: one layer per person with soft hair edges, and faces shaped by a fitted face mesh", PHOTO),
    S("device", "auto", "Device",
      "Where the networks run: the best GPU that loads the model, else the CPU (auto); the CPU only; or a GPU "
      "only (an error when none can run the model)", PHOTO, kind="enum",
      choices=(("auto", "Automatic", "The best GPU ONNX Runtime finds that loads the model (CUDA, DirectML, "
                                     "CoreML), else the CPU"),
               ("cpu", "CPU", "Always the CPU"),
               ("gpu", "GPU", "Only a GPU: an error when none can run the model")),
      on_panel=False, in_preferences=True, commands=("make", "depth", "bench")),
    S("segmenter", "builtin", "People", "How people are found for portrait refinement", PHOTO, kind="enum",
      choices=(("builtin", "Built-in", "MediaPipe's person segmentation, offline"),
               ("upernet-convnext-small", "UperNet ConvNeXt (online)",
                "A stronger segmentation model, downloaded on first use (330 MB, MIT, PyTorch)")),
      open_choices=True),
    S("inpainter", "classical", "Background Fill",
      "How the background the camera reveals behind the subject is filled in: the classical fill, or a learned "
      "inpainting network run on the revealed band", PHOTO, kind="enum", choices=_inpainter_choices,
      commands=("make", "bench")),
    # --- the camera path: each change re-keys the camera at once ------------------------------
    S("path", "auto", "Camera Path", "Camera path preset", PATH, kind="enum",
      choices=tuple((k, *_PATH_CHOICES[k]) for k in camera_path.PRESETS), update=REANIMATE),
    S("amplitude", 1.0, "Amplitude", "How far the camera travels, relative to the preset", PATH,
      min=0.0, soft_max=3.0, max=10.0, update=REANIMATE),
    S("direction", 0.0, "Direction", "Turns sideways moves in the photo's plane (0: left-right, 90: up-down)",
      PATH, kind="angle", min=-math.pi, max=math.pi, update=REANIMATE),
    S("max_reveal", 2.0, "Max Reveal",
      "Automatic path: the most of the frame, in percent, it may show that the photo hid (filled in by photo3d)",
      PATH, kind="percent", min=0.1, max=20.0, update=REANIMATE),
    S("frames", 96, "Duration", "Length of the animation in frames", PATH, min=2, max=100000, update=REANIMATE),
    S("easing", "ease-in-out", "Easing", "Timing of paths that do not loop", PATH, kind="enum",
      choices=tuple((e, e.replace("-", " ").title(), f"{e} timing") for e in camera_path.EASINGS),
      update=REANIMATE),
    S("loop", "once", "Loop", "For moves that do not circle back by themselves", PATH, kind="enum",
      choices=(("once", "Once", "Play the move one way"),
               ("loop", "Seamless Loop", "There and back with a smooth turn-around: the clip wraps with no jolt"),
               ("pingpong", "Ping-Pong", "There and back again with the chosen easing")), update=REANIMATE),
    S("crop_to_photo", True, "Stay Inside Photo", "Zoom in just enough that no frame shows past the photo's edges",
      PATH, update=REANIMATE),
    # --- effects: each change rebuilds the effect objects at once ----------------------------
    S("fog", False, "Fog", "Volumetric haze, thicker with distance, in the photo's far colour", EFFECTS_GROUP,
      flag=None, update=REBUILD_EFFECTS),
    S("fog_density", 2.0, "Density", "Fog density", EFFECTS_GROUP, min=0.0, soft_max=10.0,
      update=REBUILD_EFFECTS),
    S("fog_color", (0.7, 0.72, 0.75), "Colour", "Fog colour (set from the photo's far colour when it is made)",
      EFFECTS_GROUP, kind="colour", min=0.0, max=1.0, flag=None, update=REBUILD_EFFECTS),
    S("fog_height", 0.0, "Height Falloff", "0: even with height; else thinner higher up (frame heights)",
      EFFECTS_GROUP, min=0.0, soft_max=4.0, update=REBUILD_EFFECTS),
    S("fog_shafts", True, "Light Shafts",
      "When the photo shows a light (sun, window, lamp), rays stream from it and what is dark around it in the "
      "photo cuts dark wedges into them (a pass in the compositor, keyed to follow the camera)", EFFECTS_GROUP,
      flag=None, update=REBUILD_EFFECTS),
    S("fog_shafts_strength", 1.0, "Shaft Strength",
      "Fog: strength of the light shafts when the photo shows a light (0: none)", EFFECTS_GROUP,
      min=0.0, soft_max=5.0, flag="--shafts", update=REBUILD_EFFECTS),
    S("rain", False, "Rain", "Falling streaks in front of and behind the subject", EFFECTS_GROUP, flag=None,
      update=REBUILD_EFFECTS),
    S("rain_density", 1.0, "Density", "Rain: how many streaks, relative", EFFECTS_GROUP, min=0.0, soft_max=4.0,
      update=REBUILD_EFFECTS),
    S("rain_speed", 1.0, "Speed", "Rain: falls per clip, relative (rounded so the loop stays seamless)",
      EFFECTS_GROUP, min=0.2, soft_max=3.0, update=REBUILD_EFFECTS),
    S("rain_length", 1.0, "Streak Length", "Rain: streak length, relative", EFFECTS_GROUP, min=0.1, soft_max=4.0,
      update=REBUILD_EFFECTS),
    S("rain_wind", math.radians(10.0), "Wind", "Rain: slant of the streaks (degrees)", EFFECTS_GROUP,
      kind="angle", min=-math.radians(60), max=math.radians(60), update=REBUILD_EFFECTS),
    S("rain_splashes", False, "Splashes",
      "Short-lived crowns where the rain meets the reconstructed ground (surfaces facing up, below the camera); "
      "as many as the rain's density", EFFECTS_GROUP, flag=None, update=REBUILD_EFFECTS),
    S("particles", "none", "Particles", "Drifting points", EFFECTS_GROUP, kind="enum", flag=None,
      choices=(("none", "None", "No particles"),
               ("dust", "Dust", "Warm motes drifting in the air"),
               ("snow", "Snow", "Flakes falling and swaying"),
               ("fireflies", "Fireflies", "Glowing points hovering"),
               ("bokeh", "Bokeh", "Large soft lights between the camera and the subject (turn on Depth of Field)")),
      update=REBUILD_EFFECTS),
    S("particle_density", 1.0, "Density", "Particles: how many, relative", EFFECTS_GROUP, min=0.0, soft_max=4.0,
      update=REBUILD_EFFECTS),
    S("dof", False, "Depth of Field", "Focus on the camera's target (the subject); near and far blur",
      EFFECTS_GROUP, flag=None, update=REBUILD_EFFECTS),
    S("dof_fstop", 1.2, "F-Stop", "Depth of field: the aperture's f-number (smaller: more blur)", EFFECTS_GROUP,
      min=0.1, soft_max=16.0, update=REBUILD_EFFECTS),
    S("motion_blur", False, "Motion Blur", "Blur what moves during a frame", EFFECTS_GROUP,
      update=REBUILD_EFFECTS),
    # --- rendering the animation: the CLI sets them; in Blender, the scene's render settings rule
    S("outputs", ("mp4",), "Outputs",
      "The files to render (comma list): " + ", ".join(f"{n} ({w})" for n, w in _output_files()), RENDER,
      kind="flags", choices=_output_choices, parse=_parse_outputs, metavar="LIST"),
    S("aspect", "photo", "Aspect", "Shape of the frame: the photo's own (1080 px on the long side), or a "
      "social format at 1080 px on the short side; the camera zooms so no frame shows past the photo's edges",
      RENDER, kind="enum", choices=ASPECT_CHOICES, update=RESIZE),
    S("quality", "final", "Quality",
      "Render samples per engine: draft (fast previews) or final (docs/performance.md); --samples overrides",
      RENDER, kind="enum", choices=(("draft", "Draft", "Few samples: fast previews, slight noise on edges"),
                                    ("final", "Final", "Enough samples for clean edges"))),
    S("engine", "eevee", "Render Engine", "Render engine (Cycles is faster without a GPU)", RENDER, kind="enum",
      choices=(("eevee", "Eevee", ""), ("cycles", "Cycles", ""), ("workbench", "Workbench", "")),
      on_panel=False),
    S("samples", 0, "Samples", "Render samples per pixel (0: from the quality setting)", RENDER, min=0, max=65536,
      on_panel=False),
    S("fps", 30, "Frame Rate", "Frames per second (in Blender: the scene's own frame rate)", RENDER,
      min=1, max=1000, on_panel=False),
    S("size", None, "Size", "Render size WxH (default: from the aspect setting)", RENDER,
      kind="size", parse=_parse_size, on_panel=False),
    # --- stereo outputs (sbs, anaglyph): the eye separation follows the scene's depth range
    S("stereo_parallax", 2.0, "Stereo Depth",
      "Stereo outputs: the on-screen parallax between the nearest and the farthest point, in percent of the frame "
      "width (sets the eye separation from the depth range; the subject stays in the screen plane)", RENDER,
      kind="percent", min=0.1, soft_max=5.0, max=10.0),
    S("stereo_half_width", False, "Half-Width Side-by-Side",
      "Side-by-side stereo: each eye squeezed into half the frame (the mono video's size, for 3D TVs) instead of "
      "two full-width views side by side (VR players)", RENDER),
)
del S

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


def defaults() -> dict[str, Any]:
    return {s.name: s.default for s in SETTINGS}


class Options(SimpleNamespace):
    """Plain values of every setting, by name (what the scene builders and converters read).

    ``Options(path="swing", effects=("fog",))``: unnamed settings take their defaults;
    ``effects`` names from EFFECTS switch on the settings they stand for."""

    def __init__(self, effects: tuple[str, ...] | list[str] = (), **values):
        unknown = set(values) - set(BY_NAME)
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        merged = defaults()
        merged.update(values)
        for name in effects:
            merged.update(EFFECT_SETTINGS[name])
        super().__init__(**merged)

    @classmethod
    def of(cls, source) -> Options:
        """The values of an object with the settings as attributes (``scene.photo3d``, parsed args)."""
        values = {}
        for s in SETTINGS:
            if not hasattr(source, s.name):
                continue
            v = getattr(source, s.name)
            if s.type == "colour":
                v = tuple(float(c) for c in v)
            elif s.type == "flags":       # Blender's set, in the order of the choices
                v = tuple(c for c in s.choice_ids() if c in v)
            values[s.name] = v
        return cls(**values)

    def effects(self) -> tuple[str, ...]:
        """The EFFECTS names these values switch on (the CLI's --effects)."""
        on = []
        for name, wants in EFFECT_SETTINGS.items():
            if all(getattr(self, k) == v for k, v in wants.items()):
                on.append(name)
        if "splashes" in on:
            on.remove("rain")
        return tuple(on)


def tiles_count(value: str) -> int:
    """depth_tiles as the pipeline counts it: 0 off, pipeline.AUTO_TILES, or N tiles."""
    from .inference.pipeline import AUTO_TILES
    return {"off": 0, "auto": AUTO_TILES}.get(value) if value in ("off", "auto") else int(value)


def pipeline_settings(opts, **extra):
    """The one converter from settings (``Options``, ``scene.photo3d``) to the pipeline's."""
    from .inference import pipeline
    return pipeline.Settings(
        depth_model=opts.depth_model or None, hfov_deg=opts.fov or None, amplitude=opts.amplitude,
        portrait=opts.portrait, segmenter=None if opts.segmenter in ("", "builtin") else opts.segmenter,
        depth_tiles=tiles_count(opts.depth_tiles), device=opts.device,
        inpainter=None if opts.inpainter in ("", "classical") else opts.inpainter, **extra)


# --- the command line ----------------------------------------------------------------------

def _checked(s: Setting) -> Callable[[str], Any]:
    """argparse type for a setting: parse, convert units, check the range; one-line messages."""

    def convert(text: str):
        if s.parse is not None:
            try:
                return s.parse(text)
            except ValueError as e:
                raise argparse.ArgumentTypeError(str(e)) from None
        kind = s.type
        try:
            v = int(text) if kind == "int" else float(text)
        except ValueError:
            what = "a whole number" if kind == "int" else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, not {text!r}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"expected a finite number, not {text!r}")
        shown = v
        if kind == "angle":
            v = math.radians(v)
        lo, hi = s.min, s.max
        if (lo is not None and v < lo - 1e-12) or (hi is not None and v > hi + 1e-12):
            fmt = math.degrees if kind == "angle" else (lambda x: x)
            rng = f"between {fmt(lo):g} and {fmt(hi):g}" if lo is not None and hi is not None else \
                (f"at least {fmt(lo):g}" if lo is not None else f"at most {fmt(hi):g}")
            unit = {"percent": "a percentage ", "angle": "degrees "}.get(kind, "")
            raise argparse.ArgumentTypeError(f"{s.cli_flag} {shown:g} is out of range: give {unit}{rng}")
        return v

    convert.__name__ = s.name       # argparse names the type in its messages
    return convert


def _shown_default(s: Setting) -> str:
    if s.type == "angle":
        return f"{math.degrees(s.default):g}"
    if s.type == "bool":
        return "on" if s.default else "off"
    if s.type == "flags":
        return ",".join(s.default)
    return str(s.default)


def add_arguments(parser: argparse.ArgumentParser, command: str):
    """One option per setting that ``command`` takes, with the setting's default and range."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for s in SETTINGS:
        if command not in s.commands or s.cli_flag is None:
            continue
        g = groups.get(s.group)
        if g is None:
            g = groups[s.group] = parser.add_argument_group(f"{s.group} settings")
        text = s.help.replace("%", "%%")
        kind = s.type
        if kind == "bool":
            g.add_argument(s.cli_flag, dest=s.name, action=argparse.BooleanOptionalAction, default=s.default,
                           help=f"{text} (default: {_shown_default(s)})")
        elif kind == "enum" and not s.open_choices and s.parse is None:
            g.add_argument(s.cli_flag, dest=s.name, default=s.default, choices=s.choice_ids(),
                           help=f"{text} (default: {s.default})")
        elif kind in ("enum", "str", "path") and s.parse is None:
            names = ", ".join(s.choice_ids())
            g.add_argument(s.cli_flag, dest=s.name, default=s.default,
                           help=f"{text}: {names} or a model folder (default: {s.default})")
        else:
            unit = " (degrees)" if kind == "angle" else ""
            metavar = s.metavar or {"size": "WxH", "int": "N", "angle": "DEGREES", "percent": "PERCENT"}.get(kind, "X")
            if s.name == "depth_tiles":
                metavar = "off|auto|N"
            elif s.name == "fog_shafts_strength":
                metavar = "STRENGTH"
            g.add_argument(s.cli_flag, dest=s.name, type=_checked(s), default=s.default, metavar=metavar,
                           help=f"{text}{unit} (default: {_shown_default(s) if s.default is not None else 'auto'})")
    if command == "make":
        parser.add_argument("--effects", type=parse_effects, default=(),
                            help=f"none | comma list of {', '.join(EFFECTS)} (dust, snow, fireflies, bokeh: one "
                                 "of them; splashes: rain with splashes on the ground)")


def parse_effects(text: str) -> tuple[str, ...]:
    names = [e.strip().lower() for e in text.split(",") if e.strip()]
    if names in ([], ["none"]):
        return ()
    unknown = [n for n in names if n not in EFFECTS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown effect(s): {', '.join(unknown)} (choose from none, {', '.join(EFFECTS)})")
    if sum(n in PARTICLE_KINDS for n in names) > 1:
        raise argparse.ArgumentTypeError(f"choose one of {', '.join(PARTICLE_KINDS)}")
    return tuple(names)


def options_from_args(args: argparse.Namespace) -> Options:
    """Options from parsed arguments: the settings they name, --effects switched on, and the
    shaft strength deciding whether there are shafts at all."""
    values = {s.name: getattr(args, s.name) for s in SETTINGS if hasattr(args, s.name)}
    opts = Options(effects=getattr(args, "effects", ()), **values)
    if "fog_shafts_strength" in values:
        opts.fog_shafts = opts.fog_shafts_strength > 0
    return opts
