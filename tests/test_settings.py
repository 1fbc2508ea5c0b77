"""One source for every setting: the panel, the command line and the options agree."""
import math

import pytest

from photo3d import cli, settings
from photo3d.inference import depth as depth_models
from photo3d.settings import SETTINGS, Options


def _cli_defaults(command: str = "make") -> Options:
    args = cli.build_parser().parse_args([command, "photo.jpg", "--out", "out"])
    return settings.options_from_args(args)


def _same(a, b) -> bool:
    if isinstance(a, (tuple, list)) or hasattr(a, "__len__") and not isinstance(a, str):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)
    return a == b


def test_every_setting_is_declared_once_with_a_default_in_its_choices_and_range():
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    for s in SETTINGS:
        if s.type == "enum":
            assert s.default in s.choice_ids(), s.name
        if s.type in ("int", "float", "angle", "percent"):
            assert s.min is None or s.default >= s.min, s.name
            assert s.max is None or s.default <= s.max, s.name
        assert s.label and s.help, s.name


def test_the_panel_defaults_equal_the_command_line_defaults(empty_scene):
    panel = empty_scene.photo3d
    cli_opts = _cli_defaults()
    checked = 0
    for s in SETTINGS:
        if not s.on_panel:
            continue
        assert hasattr(panel, s.name), f"{s.name} is declared but not on the panel"
        assert _same(getattr(panel, s.name), s.default), s.name
        assert _same(getattr(cli_opts, s.name), s.default), s.name
        checked += 1
    assert checked >= 25
    # The panel runs the bundled network, as the command line does.
    assert panel.depth_model == depth_models.DEFAULT_MODEL == "photo3d-net"
    # And the one converter gives the pipeline the same settings from either.
    assert settings.pipeline_settings(Options.of(panel)) == settings.pipeline_settings(cli_opts)


def test_every_command_line_option_comes_from_a_setting():
    parser = cli.build_parser()
    make = parser._subparsers._group_actions[0].choices["make"]
    flags = {f for a in make._actions for f in a.option_strings}
    for s in SETTINGS:
        if s.cli_flag is not None and "make" in s.commands:
            assert s.cli_flag in flags, s.name
    # What is not a setting: where the photo and outputs go, and how to run.
    extra = {f for f in flags if f.startswith("--") and not f.startswith("--no-")} - {
        s.cli_flag for s in SETTINGS if s.cli_flag}
    assert extra == {"--help", "--out", "--depth", "--offline", "--effects", "--outputs"}


def test_command_line_values_convert_to_blender_units():
    args = cli.build_parser().parse_args(
        ["make", "p.jpg", "--out", "o", "--direction", "90", "--rain-wind", "-20", "--no-portrait",
         "--depth-tiles", "3", "--effects", "splashes,snow", "--shafts", "0", "--size", "640x360"])
    opts = settings.options_from_args(args)
    assert opts.direction == pytest.approx(math.pi / 2) and opts.rain_wind == pytest.approx(math.radians(-20))
    assert opts.portrait is False and opts.size == (640, 360)
    assert opts.rain and opts.rain_splashes and opts.particles == "snow" and not opts.fog
    assert opts.fog_shafts is False
    ps = settings.pipeline_settings(opts)
    assert ps.depth_tiles == 3 and ps.portrait is False and ps.segmenter is None and ps.hfov_deg is None


@pytest.mark.parametrize("argv, message", [
    (["--amplitude", "11"], "between 0 and 10"),
    (["--direction", "200"], "between -180 and 180"),
    (["--frames", "1"], "between 2 and 100000"),
    (["--fog-density", "-1"], "at least 0"),
    (["--rain-wind", "abc"], "expected a number"),
    (["--depth-tiles", "9"], "out of range (2-8)"),
])
def test_out_of_range_values_are_one_clear_line(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        cli.build_parser().parse_args(["make", "p.jpg", "--out", "o", *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_the_panel_settings_round_trip_through_options(empty_scene):
    panel = empty_scene.photo3d
    panel.path, panel.amplitude, panel.rain, panel.particles = "swing", 2.5, True, "dust"
    opts = Options.of(panel)
    assert (opts.path, opts.amplitude, opts.rain, opts.particles) == ("swing", 2.5, True, "dust")
    assert set(opts.effects()) == {"rain", "dust"}
    with pytest.raises(TypeError):
        Options(no_such_setting=1)
