"""Tests of ecgdigitize.lattice: perspective refinement from the grid lattice."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from ecgdigitize import DigitizeConfig, digitize
from ecgdigitize.errors import ConfigurationError
from ecgdigitize.grid import GridSpec, detect_grid
from ecgdigitize.lattice import _deviation_mm, fit_lattice, refine_by_lattice
from ecgdigitize.metrics import score_record
from ecgdigitize.synth import Degradation, SheetStyle, render_sheet, simulate_record

PPM = 8.0


def grid_sheet(w: int = 1600, h: int = 1200, ppm: float = PPM) -> np.ndarray:
    """Red 1 mm / 5 mm grid lines on white paper, ``ppm`` px per mm."""
    img = np.full((h, w, 3), 255, np.uint8)
    for k in range(int(w / ppm) + 1):
        x = round(k * ppm)
        if x < w:
            img[:, x] = (200, 40, 40) if k % 5 == 0 else (240, 150, 150)
    for k in range(int(h / ppm) + 1):
        y = round(k * ppm)
        if y < h:
            img[y, :] = (200, 40, 40) if k % 5 == 0 else (240, 150, 150)
    return img


def keystone(w: int, h: int, amount: float) -> np.ndarray:
    """A homography that narrows the top edge by ``amount`` of the width."""
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    d = amount * w / 2
    dst = np.float32([[d, 0], [w - d, 0], [w, h], [0, h]])
    return cv2.getPerspectiveTransform(src, dst).astype(float)


def spec(ppm_x: float = PPM, ppm_y: float = PPM) -> GridSpec:
    return GridSpec(ppm_x, ppm_y, "solid", (240, 150, 150), 1.0, "grid")


def test_flat_grid_fits_identity_and_is_left_alone():
    img = grid_sheet()
    fit = fit_lattice(img, spec())
    assert fit is not None
    assert fit.deviation_mm < 0.02
    assert fit.residual_mm < 0.05
    assert fit.n_tiles > 500
    assert fit.bend_mm == 0.0 and fit.bend is None
    out, hom, again = refine_by_lattice(img, spec())
    assert out is img and again is not None
    np.testing.assert_array_equal(hom, np.eye(3))


@pytest.mark.parametrize("amount", [0.02, 0.04])
def test_keystone_is_removed(amount):
    img = grid_sheet()
    h, w = img.shape[:2]
    warp = keystone(w, h, amount)
    seen = cv2.warpPerspective(img, warp, (w, h), flags=cv2.INTER_LINEAR,
                               borderValue=(255, 255, 255))
    grid = detect_grid(seen)
    out, hom, fit = refine_by_lattice(seen, grid)
    assert fit is not None and out is not seen
    # a 2-4 % keystone moves the top corners by 2-4 mm; about half of that is
    # not a plain scaling (measured 0.92 and 1.89 mm)
    assert fit.deviation_mm > 0.4 * amount * w / 2 / PPM
    # the paper -> corrected image mapping is now a plain axis-aligned scaling
    composite = hom @ warp
    area = (0.1 * w, 0.1 * h, 0.9 * w, 0.9 * h)
    assert _deviation_mm(composite, area, PPM, PPM) < 0.05
    # and the grid of the corrected image is as fine as the input's
    again = detect_grid(out)
    assert again.px_per_mm_x == pytest.approx(grid.px_per_mm_x, rel=0.01)


def test_a_fold_is_flattened():
    # a crease: the right half of the page sits 1.2 mm lower, over a 12 mm wide bend
    img = grid_sheet()
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dy = 0.6 * PPM * np.tanh((xx - 0.55 * w) / (1.5 * PPM * 4))
    folded = cv2.remap(img, xx, yy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    grid = detect_grid(folded)
    fit = fit_lattice(folded, grid)
    assert fit is not None
    assert 0.3 < fit.bend_mm < 0.8        # up to the half-height of the fold (0.6 mm); measured 0.49
    out, _, _ = refine_by_lattice(folded, grid)
    # one 5 mm rule, left and right of the fold: 1.2 mm apart before, level after
    assert abs(abs(_rule_step_px(folded)) / PPM - 1.2) < 0.1
    assert abs(_rule_step_px(out)) / PPM < 0.15
    after = fit_lattice(out, detect_grid(out))
    assert after is not None and after.deviation_mm < 0.15


def _rule_step_px(img: np.ndarray) -> float:
    """Height of the 5 mm rule nearest the middle at 80 % of the width less at 30 %, px."""
    h, w = img.shape[:2]
    dark = 255.0 - img[:, :, 1].astype(float)          # rules are dark in green

    def centre(x: float, near: float) -> float:
        prof = dark[:, round(x) - 5:round(x) + 5].mean(axis=1)
        lo = round(near) - 18
        win = prof[lo:lo + 37]
        y = lo + int(np.argmax(win))
        seg = prof[y - 2:y + 3]
        return float(y - 2 + np.sum(seg * np.arange(5)) / seg.sum())

    left = centre(0.3 * w, h / 2)
    return centre(0.8 * w, left) - left


def test_no_periodic_grid_gives_no_fit():
    img = np.full((800, 1000, 3), 255, np.uint8)
    page = GridSpec(4.0, 4.0, "none", None, 0.3, "page")
    assert fit_lattice(img, page) is None
    out, hom, fit = refine_by_lattice(img, page)
    assert out is img and fit is None
    np.testing.assert_array_equal(hom, np.eye(3))
    # a grid spec that claims a grid on blank paper: nothing coherent to fit
    assert fit_lattice(img, spec()) is None


def test_photo_of_a_sheet_is_better_with_the_lattice():
    record = simulate_record(seed=3, heart_rate=70.0)
    sheet = render_sheet(record, "3x4+1", SheetStyle(dpi=150),
                         Degradation(perspective=0.04, rotation_deg=1.5), seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        on = digitize(sheet.image)
        off = digitize(sheet.image, config=DigitizeConfig(lattice_min_mm=None))
    assert on.extras["lattice"] is not None and off.extras["lattice"] is None
    snr_on = score_record(sheet.truth.reference, on).attrs["mean_snr_db"]
    snr_off = score_record(sheet.truth.reference, off).attrs["mean_snr_db"]
    assert snr_on > snr_off + 1.0
    assert snr_on > 10.0


def test_config_checks_lattice_threshold():
    with pytest.raises(ConfigurationError, match="lattice_min_mm"):
        DigitizeConfig(lattice_min_mm=-1.0)
    assert DigitizeConfig(lattice_min_mm=None).lattice_min_mm is None



def test_a_precomputed_grid_weight_is_used_and_checked():
    from ecgdigitize.errors import ConfigurationError
    from ecgdigitize.grid import GridSpec, grid_mask
    from ecgdigitize.lattice import fit_lattice

    img = np.full((600, 800, 3), 255, np.uint8)
    img[:, ::8] = (230, 90, 90)
    img[::8, :] = (230, 90, 90)
    grid = GridSpec(8.0, 8.0, "solid", (230, 90, 90), 1.0, "grid")
    own, given = fit_lattice(img, grid), fit_lattice(img, grid, grid_weight=grid_mask(img))
    assert own is not None and given is not None
    np.testing.assert_array_equal(own.homography, given.homography)
    assert fit_lattice(img, grid, grid_weight=np.zeros((600, 800), np.float32)) is None
    with pytest.raises(ConfigurationError, match="grid_weight"):
        fit_lattice(img, grid, grid_weight=np.zeros((60, 80), np.float32))
