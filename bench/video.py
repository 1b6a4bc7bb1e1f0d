"""Video rendering figures: the render time of a 10 s 720p video (the local upstream's
MP4, H.264), against an anchor measured in the same run (painting one still 720p frame of
the same scene), and how long the event loop stalls while two such videos render in
worker processes (the way the gateway renders them).

    python bench/video.py [--seconds 10] [--runs 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from gengate.imaging import video as videos
from gengate.imaging.palette import derive_seed, make_palette, prompt_key
from gengate.imaging.scene import paint_scene

PROMPT = "a misty mountain lake at sunset"
SIZE = (1280, 720)


def _anchor() -> float:
    started = time.perf_counter()
    paint_scene(make_palette(PROMPT), derive_seed("tile", prompt_key(PROMPT), 1, 0), SIZE)
    return time.perf_counter() - started


async def _loop_stall(seconds: float) -> dict[str, float]:
    """Longest and median gap of a 5 ms ticker while two videos render off the loop."""
    gaps: list[float] = []
    jobs = [asyncio.to_thread(videos.render_video_offloaded, PROMPT, seed, SIZE, seconds)
            for seed in (1, 2)]
    done = asyncio.gather(*jobs)
    last = time.perf_counter()
    while not done.done():
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    await done
    return {"tick_ms": 5.0, "max_gap_ms": round(max(gaps) * 1000, 1),
            "median_gap_ms": round(statistics.median(gaps) * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    anchor = min(_anchor() for _ in range(3))
    renders = []
    for run in range(args.runs):
        started = time.perf_counter()
        made = videos.render_video(PROMPT, run + 1, SIZE, args.seconds)
        renders.append(time.perf_counter() - started)
    render = min(renders)
    stall = asyncio.run(_loop_stall(args.seconds))
    print(json.dumps({
        "video": f"{SIZE[0]}x{SIZE[1]}, {args.seconds:g} s, {videos.FPS} fps, H.264",
        "mp4_bytes": len(made.mp4),
        "render_s": round(render, 2),
        "anchor_still_frame_s": round(anchor, 3),
        "render_vs_anchor": round(render / anchor, 1),
        "realtime_factor": round(args.seconds / render, 2),
        "event_loop_while_two_render": stall,
    }, indent=2))


if __name__ == "__main__":
    main()
