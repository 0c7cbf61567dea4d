"""A self-contained HTML report of a replay: per plan the camera frame with the trajectory
drawn on it (or only a bird's-eye view when the camera is not calibrated), the causal chain,
the meta-actions and the metrics; a summary with charts. Images are embedded (base64 JPEG or
PNG): frames and bird's-eye views drawn with OpenCV, charts with matplotlib (titled axes
with units, legends beside the data, stop plans marked). Long causal chains show two lines,
the rest on a click. Rows are rendered as the replay goes, so memory stays bounded however
long the bag.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from alpamayo_ros.bag.projection import CameraCalibration
from alpamayo_ros.core.plan import LATENCY_STAGES
from alpamayo_ros.messages.plan import speed_rgb

if TYPE_CHECKING:
    from alpamayo_ros.bag.replay import ReplayResult, ReplayStep

MAX_ROWS = 120  # plans shown one by one; longer replays are subsampled evenly
LOGGED_BGR = (200, 40, 200)  # magenta: apart from every speed colour
SAMPLE_BGR = (170, 170, 170)
FONT = cv2.FONT_HERSHEY_SIMPLEX

UNTRAINED_WARNING = (
    "UNTRAINED CHECKPOINT: the model has random weights. Its reasoning is noise and its "
    "trajectories mean nothing; this report shows the pipeline, not a driving model."
)


def _speed_bgr(v: float) -> tuple[int, int, int]:
    r, g, b = speed_rgb(v)
    return (round(255 * b), round(255 * g), round(255 * r))


def data_uri(bgr: np.ndarray, fmt: str = ".jpg") -> str:
    """An (H, W, 3) BGR image as a data: URI (JPEG or PNG)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, 80] if fmt == ".jpg" else []
    ok, buf = cv2.imencode(fmt, bgr, params)
    if not ok:
        raise ValueError(f"{fmt} encoding failed for an image of shape {bgr.shape}")
    mime = "jpeg" if fmt == ".jpg" else "png"
    return f"data:image/{mime};base64,{base64.b64encode(buf.tobytes()).decode()}"


def _pixel(p: np.ndarray) -> tuple[int, int]:
    return (round(float(p[0])), round(float(p[1])))


def _polyline(img: np.ndarray, uv: np.ndarray, ok: np.ndarray, color, thickness: int) -> None:
    """Segments between consecutive points that are both drawable."""
    for k in range(len(uv) - 1):
        if ok[k] and ok[k + 1]:
            cv2.line(img, _pixel(uv[k]), _pixel(uv[k + 1]), color, thickness, cv2.LINE_AA)


def _speed_line(img: np.ndarray, uv: np.ndarray, ok: np.ndarray, speeds, thickness: int) -> None:
    for k in range(len(uv) - 1):
        if ok[k] and ok[k + 1]:
            color = _speed_bgr(float(speeds[k]))
            cv2.line(img, _pixel(uv[k]), _pixel(uv[k + 1]), color, thickness, cv2.LINE_AA)


def _from_origin(xy: np.ndarray) -> np.ndarray:
    """(T, 2) path after t0 -> (T+1, 2) starting at the ego origin."""
    return np.concatenate([np.zeros((1, 2)), np.asarray(xy, dtype=np.float64)[:, :2]])


def camera_view(step: ReplayStep, calib: CameraCalibration, width: int = 640) -> np.ndarray:
    """The report camera's frame at t0 (BGR, `width` wide) with the other samples (grey),
    the logged future (magenta) and the chosen plan (coloured by speed), drawn at the height
    of base_link."""
    assert step.image is not None
    img = cv2.cvtColor(np.asarray(step.image), cv2.COLOR_RGB2BGR)

    def project(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pts = _from_origin(xy)
        return calib.project(np.concatenate([pts, np.zeros((len(pts), 1))], axis=1))

    if step.sample_xy is not None:
        for i, xy in enumerate(step.sample_xy):
            if i != step.plan.chosen_sample:
                _polyline(img, *project(xy), SAMPLE_BGR, 1)
    if step.logged_xy is not None:
        _polyline(img, *project(step.logged_xy), LOGGED_BGR, 2)
    uv, ok = project(step.plan.xyz)
    _speed_line(img, uv, ok, np.concatenate([[step.plan.speed[0]], step.plan.speed]), 3)
    scale = width / img.shape[1]
    return cv2.resize(img, (width, round(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)


def birds_eye(step: ReplayStep, size: int = 320) -> np.ndarray:
    """Top view (BGR): x forward is up, y left is left, 10 m grid, the car at the bottom."""
    img = np.full((size, size, 3), 250, np.uint8)
    paths = [step.plan.xyz[:, :2]]
    if step.sample_xy is not None:
        paths += list(step.sample_xy)
    if step.logged_xy is not None:
        paths.append(step.logged_xy)
    reach = max(30.0, 1.1 * max(float(np.abs(p).max()) for p in paths))
    scale = (size - 20) / reach

    def px(xy: np.ndarray) -> np.ndarray:
        pts = _from_origin(xy)
        return np.stack([size / 2 - pts[:, 1] * scale, size - 10 - pts[:, 0] * scale], axis=1)

    for m in np.arange(0, reach, 10.0):
        y = round(size - 10 - m * scale)
        cv2.line(img, (0, y), (size, y), (225, 225, 225), 1)
        cv2.putText(img, f"{m:.0f} m", (2, y - 2), FONT, 0.3, (150, 150, 150))
    if step.sample_xy is not None:
        for xy in step.sample_xy:
            pts = px(xy)
            _polyline(img, pts, np.ones(len(pts), bool), SAMPLE_BGR, 1)
    if step.logged_xy is not None:
        pts = px(step.logged_xy)
        _polyline(img, pts, np.ones(len(pts), bool), LOGGED_BGR, 2)
    pts = px(step.plan.xyz)
    speeds = np.concatenate([[step.plan.speed[0]], step.plan.speed])
    _speed_line(img, pts, np.ones(len(pts), bool), speeds, 2)
    cv2.rectangle(img, (size // 2 - 4, size - 18), (size // 2 + 4, size - 4), (40, 40, 40), -1)
    return img


CHAIN_PREVIEW = 160  # characters of a causal chain shown before "more"


def chart_png(
    series: dict[str, tuple[np.ndarray, np.ndarray]],
    title: str,
    ylabel: str,
    stops: np.ndarray | None = None,
    dashed: tuple[str, ...] = (),
) -> bytes:
    """A line chart (PNG bytes) of named (x, y) series over bag time, NaNs leaving gaps;
    series without data are left out (said in the title when none has any); `stops`: bag
    times of stop plans, marked under the data; names in `dashed` drawn dashed (baselines).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 2.8), dpi=90)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    drawn = 0
    greys = iter(("0.35", "0.6", "0.75"))
    for name, (x, y) in series.items():
        y = np.asarray(y, dtype=np.float64)
        if not len(y) or not np.isfinite(y).any():
            continue
        if name in dashed:  # baselines: grey, dashed
            ax.plot(x, y, "--", lw=1.2, color=next(greys, "0.5"), label=name)
        else:  # dots too: a series of a single plan still shows
            ax.plot(x, y, "-", marker=".", ms=3, lw=1.4, label=name)
        drawn += 1
    if stops is not None and len(stops):
        ax.plot(stops, np.zeros(len(stops)), "|", color="#c00", ms=12, mew=1.5,
                label="stop plan", clip_on=False)  # fmt: skip
    ax.set_title(title if drawn else f"{title}: no data", fontsize=10)
    ax.set_xlabel("bag time [s]")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    if drawn or (stops is not None and len(stops)):
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def png_uri(png: bytes) -> str:
    return f"data:image/png;base64,{base64.b64encode(png).decode()}"


def chain_html(text: str) -> str:
    """A causal chain in bold: whole when short, else its start with the rest on a click."""
    text = text or "(empty reasoning)"
    if len(text) <= CHAIN_PREVIEW:
        return f"<p><b>{html.escape(text)}</b></p>"
    cut = text.rfind(" ", 0, CHAIN_PREVIEW)
    cut = cut if cut > CHAIN_PREVIEW // 2 else CHAIN_PREVIEW
    return (
        f"<details><summary><b>{html.escape(text[:cut])} ...</b></summary>"
        f"<b>{html.escape(text[cut:])}</b></details>"
    )


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _joined(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items()) or "none"


class ReportWriter:
    """Renders report rows as steps arrive (every stride-th step, at most MAX_ROWS), then
    writes the page with the summary and charts."""

    def __init__(self, calib: CameraCalibration | None, expected_steps: int) -> None:
        self.calib = calib
        self.stride = max(1, -(-expected_steps // MAX_ROWS))
        self.rows: list[str] = []
        self._seen = 0
        self._t_start: float | None = None

    def add(self, step: ReplayStep) -> None:
        if self._t_start is None:
            self._t_start = step.tick
        index = self._seen
        self._seen += 1
        if index % self.stride == 0:
            self.rows.append(self._row(step))

    def _row(self, s: ReplayStep) -> str:
        p = s.plan
        cells = []
        if s.image is not None and self.calib is not None:
            cells.append(f'<img src="{data_uri(camera_view(s, self.calib))}">')
        elif s.image is not None:
            bgr = cv2.cvtColor(np.asarray(s.image), cv2.COLOR_RGB2BGR)
            bgr = cv2.resize(bgr, (480, round(bgr.shape[0] * 480 / bgr.shape[1])))
            cells.append(f'<img src="{data_uri(bgr)}">')
        else:
            cells.append("<em>no frame set</em>")
        cells.append(f'<img src="{data_uri(birds_eye(s), ".png")}">')
        if p.is_fallback:
            text = f'<p class="fallback">STOP PLAN: {html.escape(p.fallback_reason)}</p>'
        else:
            text = chain_html(p.reasoning)
        metrics = ", ".join(f"{k} {v:.2f} m" for k, v in s.metrics.items()) or "no logged future"
        latency = ", ".join(f"{k} {v:.0f}" for k, v in p.latency_ms.items())
        t = s.tick - (self._t_start or 0.0)
        return (
            f"<tr><td>{t:.1f} s</td><td>{cells[0]}</td><td>{cells[1]}</td><td>{text}"
            f"<p>meta-actions: {html.escape(', '.join(p.meta_actions))}</p>"
            f"<p>sample {p.chosen_sample + 1} of {p.num_samples}</p><p>{metrics}</p>"
            f"<p class='small'>latency ms: {html.escape(latency)}</p></td></tr>"
        )

    def write(self, result: ReplayResult, path: Path) -> None:
        summary = result.summary()
        steps = result.steps
        ticks = np.array([s.tick - (self._t_start or 0.0) for s in steps])
        stops = ticks[[s.plan.is_fallback for s in steps]] if steps else ticks
        ade = {
            f"model ADE {h} s": (
                ticks, np.array([s.metrics.get(f"ade_{h}s", np.nan) for s in steps])
            )
            for h in ("1.0", "3.0", "6.4")
        }  # fmt: skip
        ade["constant velocity ADE 3.0 s"] = (
            ticks, np.array([s.baseline.get("ade_3.0s", np.nan) for s in steps])
        )  # fmt: skip
        ade["constant accel/curvature ADE 3.0 s"] = (
            ticks, np.array([s.baseline_ca.get("ade_3.0s", np.nan) for s in steps])
        )  # fmt: skip
        lat = {
            stage: (ticks, np.array([s.plan.latency_ms.get(stage, np.nan) for s in steps]))
            for stage in LATENCY_STAGES
        }
        baselines = ("constant velocity ADE 3.0 s", "constant accel/curvature ADE 3.0 s")
        charts = [
            chart_png(ade, "ADE of the published plan vs the logged future", "ADE [m]",
                      stops, dashed=baselines),
            chart_png(lat, "latency per stage of each plan", "latency [ms]", stops),
        ]  # fmt: skip
        warn = f'<p class="warn">{UNTRAINED_WARNING}</p>' if result.untrained else ""
        gaps = ", ".join(f"{g['seconds']:.2f} s" for g in summary["odometry_gaps"]) or "none"
        overview = [
            ("bag", summary["bag"]),
            ("model", summary["model_id"] or "(none)"),
            ("model description", summary["model_description"] or "-"),
            (
                "plans",
                f"{summary['plans']} at {summary['rate_hz']:g} Hz of bag time, "
                f"{summary['model_plans']} from the model",
            ),
            ("fallback (stop) plans", _joined(summary["fallback_plans"])),
            ("skipped inputs", _joined(summary["skipped_inputs"])),
            ("odometry gaps", gaps),
            ("throughput", f"{summary['plans_per_second']:.2f} plans/s (wall clock)"),
            (
                "trajectory drawn on",
                f"{result.report_camera} frames"
                if result.calibrated
                else "bird's-eye view only "
                "(no camera_info + /tf_static for the report camera, or it is cropped)",
            ),
        ]
        if result.interrupted:
            overview.append(("interrupted", "yes: the report covers the plans made before Ctrl-C"))
        if result.truncation:  # a truncated or damaged MCAP: what was recovered, what lost
            overview.append(("bag read in part", result.truncation))
        cv, ca = summary["constant_velocity_mean_m"], summary["constant_accel_curvature_mean_m"]
        metric_rows = [
            (
                k,
                f"{v:.3f} m over {summary['metrics_plan_count'][k]} plans"
                + (f"; constant velocity {cv[k]:.3f} m" if k in cv else "")
                + (f"; constant accel/curvature {ca[k]:.3f} m" if k in ca else ""),
            )
            for k, v in summary["metrics_mean_m"].items()
        ]
        latency_rows = [
            (k, f"p50 {v['p50_ms']:.1f} ms, p99 {v['p99_ms']:.1f} ms")
            for k, v in summary["latency"].items()
        ]
        notes = "".join(
            f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in result.camera_notes.items()
        )
        no_metrics = "<p>none: no model plan has a logged future</p>"
        every = f" (every {self.stride}th)" if self.stride > 1 else ""
        doc = f"""<!doctype html><html><head><meta charset="utf-8">
<title>alpamayo_ros replay of {html.escape(Path(result.bag).name)}</title>
<style>body{{font-family:sans-serif;margin:1em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px;vertical-align:top;text-align:left}}
.warn{{background:#c00;color:#fff;padding:.6em;font-weight:bold}}
.fallback{{color:#c00;font-weight:bold}}.small{{font-size:80%;color:#555}}</style></head><body>
<h1>Replay of {html.escape(Path(result.bag).name)}</h1>{warn}
{_table(overview)}
<h2>Open-loop metrics (mean over plans with a logged future)</h2>
{_table(metric_rows) if metric_rows else no_metrics}
<h2>Latency</h2>{_table(latency_rows) if latency_rows else "<p>no model plans</p>"}
{"<h2>Camera notes</h2><ul>" + notes + "</ul>" if notes else ""}
{"".join(f'<p><img src="{png_uri(c)}"></p>' for c in charts)}
<p>Legend: plan coloured by speed (blue slow, red fast); other samples grey; what the driver
did (logged odometry) magenta.</p>
<h2>Plans{every}</h2>
<table><tr><th>t</th><th>camera</th><th>bird's-eye</th><th>plan</th></tr>{"".join(self.rows)}
</table></body></html>
"""
        path.write_text(doc)
