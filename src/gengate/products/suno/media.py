"""Encoding and decoding a song's media with PyAV (FFmpeg): the MP3, the MP4 of the cover
with the audio (H.264 and AAC, which browsers play), and the cover image itself (painted
by gengate's imaging code)."""

from __future__ import annotations

import io
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

from gengate.imaging.palette import make_palette
from gengate.imaging.scene import paint_scene
from gengate.products.suno.music import RATE, Audio
from gengate.providers.base import ProviderError

__all__ = ["cover", "decode_audio", "encode_jpeg", "encode_mp3", "encode_mp4"]

#: samples per frame handed to the encoders (a multiple of MP3's 1152)
_CHUNK = 1152 * 8
#: frames per second of the cover video: a still picture with a moving progress line
_FPS = 1


def cover(prompt: str, title: str, seed: int, side: int) -> Image.Image:
    """The song's cover: a scene in the prompt's palette, the title along the bottom."""
    image = paint_scene(make_palette(prompt or title), seed, (side, side)).convert("RGB")
    draw = ImageDraw.Draw(image)
    band = max(12, side // 9)
    draw.rectangle((0, side - band, side, side), fill=(0, 0, 0))
    draw.text((band // 3, side - band + band // 4), title[:60], fill=(240, 240, 240),
              font_size=max(8, band // 2))
    return image


def encode_jpeg(image: Image.Image, side: int | None = None) -> bytes:
    if side is not None and image.size != (side, side):
        image = image.resize((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


def _frames(stereo: Audio, layout: str = "stereo") -> list[av.AudioFrame]:
    frames = []
    for i in range(0, stereo.shape[1], _CHUNK):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(stereo[:, i:i + _CHUNK]),
                                           format="fltp", layout=layout)
        frame.sample_rate = RATE
        frame.pts = i
        frames.append(frame)
    return frames


def encode_mp3(stereo: Audio, bitrate: int = 128_000) -> bytes:
    """Stereo float samples as an MP3 (LAME)."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=RATE, layout="stereo")
        stream.bit_rate = bitrate
        for frame in _frames(stereo):
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def encode_mp4(picture: Image.Image, stereo: Audio) -> bytes:
    """The cover with the audio: H.264 (yuv420p, ``_FPS`` frames a second, a progress
    line along the bottom) and AAC, the file starting with its index so a player can
    begin before the download ends."""
    side = picture.size[0] - picture.size[0] % 2
    base = np.asarray(picture.resize((side, side)).convert("RGB")).copy()
    seconds = stereo.shape[1] / RATE
    count = max(1, int(np.ceil(seconds * _FPS)))
    with tempfile.TemporaryDirectory(prefix="gengate-mp4-") as folder:
        # moving the index to the front rewrites the file: FFmpeg needs a real one
        path = Path(folder) / "song.mp4"
        _write_mp4(str(path), base, stereo, count)
        return path.read_bytes()


def _write_mp4(path: str, base: np.ndarray, stereo: Audio, count: int) -> None:
    side = base.shape[0]
    with av.open(path, "w", format="mp4", options={"movflags": "+faststart"}) as container:
        video = container.add_stream("libx264", rate=_FPS)
        video.width = video.height = side
        video.pix_fmt = "yuv420p"
        video.options = {"preset": "veryfast", "crf": "28", "tune": "stillimage"}
        video.codec_context.time_base = Fraction(1, _FPS)
        audio = container.add_stream("aac", rate=RATE, layout="stereo")
        audio.bit_rate = 128_000
        line = max(2, side // 100)
        for i in range(count):
            frame_pixels = base.copy()
            done = int(side * i / max(1, count - 1))
            frame_pixels[side - line:, :done] = (250, 250, 250)
            picture_frame = av.VideoFrame.from_ndarray(frame_pixels, format="rgb24")
            picture_frame.pts = i
            container.mux(video.encode(picture_frame))
        container.mux(video.encode(None))
        for frame in _frames(stereo):
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))


def decode_audio(data: bytes, what: str = "audio") -> Audio:
    """Any audio file FFmpeg reads, as stereo float32 at :data:`RATE`; a
    :class:`ProviderError` naming ``what`` when it is not audio."""
    try:
        with av.open(io.BytesIO(data), "r") as container:
            if not container.streams.audio:
                raise ProviderError(f"[Invalid parameter] {what} has no audio")
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=RATE)
            parts = []
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray())
            for out in resampler.resample(None):
                parts.append(out.to_ndarray())
    except (av.error.FFmpegError, ValueError) as exc:
        raise ProviderError(f"[Invalid parameter] {what} is not an audio file we can read "
                            f"({type(exc).__name__})") from None
    if not parts:
        raise ProviderError(f"[Invalid parameter] {what} has no audio")
    return np.concatenate(parts, axis=1).astype(np.float32)
