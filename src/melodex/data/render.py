"""Turn note events into audio files: MIDI (music21), fluidsynth, loudness, encoding, file tags.

The pieces of the demo corpus arrive here as plain note events (onset and duration in seconds,
MIDI pitch, velocity) grouped in parts with a General MIDI program. This module writes them to a
MIDI file with music21's low-level MIDI classes, renders it with the fluidsynth command line under
a timeout and an output-size cap, trims and normalises the waveform, and encodes it to flac (with
soundfile) or ogg / mp3 / m4a (with ffmpeg), writing title / artist / album / genre tags.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from melodex.errors import MelodexError

DEFAULT_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SOUNDFONT_ENV = "MELODEX_SOUNDFONT"
SAMPLE_RATE = 44100
AUDIO_FORMATS = ("flac", "ogg", "mp3", "m4a")

_TICKS = 480  # ticks per quarter note in the MIDI files we write
_MIDI_TEMPO_BPM = 120.0  # events are in seconds; at 120 bpm one second is two quarters
_FFMPEG_CODECS = {
    "ogg": ["-c:a", "libvorbis", "-q:a", "5"],
    "mp3": ["-c:a", "libmp3lame", "-q:a", "3"],
    "m4a": ["-c:a", "aac", "-b:a", "160k"],
}


@dataclass
class Part:
    """One MIDI track: a General MIDI program and its notes.

    ``notes`` holds ``(onset_s, duration_s, midi_pitch, velocity)`` tuples; every duration must be
    positive (zero-length notes are what makes fluidsynth write forever, see FINDINGS.md).
    """

    program: int
    notes: list[tuple[float, float, int, int]] = field(default_factory=list)


def find_soundfont(soundfont: str | Path | None = None) -> Path:
    """Return the General MIDI soundfont to use.

    Order: the argument, then ``$MELODEX_SOUNDFONT``, then the Debian ``fluid-soundfont-gm`` file.
    Raises `MelodexError` naming the path and the package to install when it does not exist.
    """
    chosen = soundfont or os.environ.get(SOUNDFONT_ENV) or DEFAULT_SOUNDFONT
    path = Path(chosen).expanduser()
    if not path.is_file():
        raise MelodexError(
            f"soundfont not found: {path}. Install a General MIDI soundfont "
            "(Debian/Ubuntu: `apt-get install fluid-soundfont-gm`) or point "
            f"${SOUNDFONT_ENV} at an .sf2 file."
        )
    return path


def require_tools(formats: Sequence[str]) -> None:
    """Fail early and clearly when fluidsynth (or ffmpeg for non-flac formats) is missing."""
    if shutil.which("fluidsynth") is None:
        raise MelodexError(
            "the `fluidsynth` program is needed to render the demo corpus: "
            "`apt-get install fluidsynth fluid-soundfont-gm`"
        )
    unknown = [f for f in formats if f not in AUDIO_FORMATS]
    if unknown:
        raise MelodexError(f"unknown audio format(s) {unknown}; choose from {list(AUDIO_FORMATS)}")
    if any(f != "flac" for f in formats) and shutil.which("ffmpeg") is None:
        raise MelodexError(
            f"the `ffmpeg` program is needed to encode {sorted(set(formats) - {'flac'})}: "
            "`apt-get install ffmpeg` (or ask for formats=('flac',))"
        )


def write_midi(parts: Sequence[Part], path: Path) -> None:
    """Write ``parts`` to a type-1 MIDI file at 120 bpm (events are placed in seconds).

    Each part gets its own channel (skipping the percussion channel 10) and a program change.
    Notes of zero or negative length are dropped; at a tick, note-offs come before note-ons.
    """
    from music21 import midi

    if len(parts) > 15:
        raise MelodexError(f"{path}: {len(parts)} parts, at most 15 fit the MIDI channels")
    ticks_per_s = _TICKS * _MIDI_TEMPO_BPM / 60.0
    mf = midi.MidiFile()
    mf.ticksPerQuarterNote = _TICKS
    conductor = midi.MidiTrack(0)
    tempo = midi.MidiEvent(conductor, type=midi.MetaEvents.SET_TEMPO)
    tempo.data = int(60_000_000 / _MIDI_TEMPO_BPM).to_bytes(3, "big")
    _append_events(conductor, [(0, tempo)])
    mf.tracks.append(conductor)
    for index, part in enumerate(parts):
        channel = index + 1 if index < 9 else index + 2  # channels are 1-based; 10 is drums
        track = midi.MidiTrack(index + 1)
        program = midi.MidiEvent(track, type=midi.ChannelVoiceMessages.PROGRAM_CHANGE)
        program.channel = channel
        program.data = part.program
        timed: list[tuple[int, int, object]] = [(0, -1, program)]
        for onset, duration, pitch, velocity in part.notes:
            start = round(onset * ticks_per_s)
            end = round((onset + duration) * ticks_per_s)
            if end <= start or not 0 <= pitch <= 127:
                continue
            for tick, kind, vel in ((start, 1, velocity), (end, 0, 0)):
                ev = midi.MidiEvent(track, type=midi.ChannelVoiceMessages.NOTE_ON, channel=channel)
                ev.pitch = pitch
                ev.velocity = max(1, min(127, vel)) if kind else 0
                timed.append((tick, kind, ev))
        timed.sort(key=lambda item: (item[0], item[1]))
        _append_events(track, [(tick, ev) for tick, _, ev in timed])
        mf.tracks.append(track)
    mf.open(str(path), "wb")
    try:
        mf.write()
    finally:
        mf.close()


def _append_events(track, timed) -> None:
    from music21 import midi

    now = 0
    for tick, event in timed:
        track.events.append(midi.DeltaTime(track, time=tick - now))
        track.events.append(event)
        now = tick
    track.events.append(midi.DeltaTime(track, time=0))
    end = midi.MidiEvent(track, type=midi.MetaEvents.END_OF_TRACK)
    end.data = b""
    track.events.append(end)


def render_midi(
    midi_path: Path,
    wav_path: Path,
    *,
    soundfont: Path,
    max_seconds: float,
    timeout: float = 120.0,
) -> None:
    """Render a MIDI file to 16-bit 44.1 kHz wav with fluidsynth, under a timeout and a size cap.

    The output may not exceed ``max_seconds`` of stereo audio (plus a margin); fluidsynth is killed
    and `MelodexError` raised when it runs past ``timeout`` or writes more than that.
    """
    cmd = ["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(SAMPLE_RATE)]
    cmd += ["-F", str(wav_path), "-T", "wav", str(soundfont), str(midi_path)]
    cap = int((max_seconds + 10.0) * SAMPLE_RATE * 4) + 4096
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    problem = None
    while proc.poll() is None:
        if time.monotonic() > deadline:
            problem = f"fluidsynth ran longer than {timeout:.0f} s"
        elif wav_path.exists() and wav_path.stat().st_size > cap:
            problem = f"fluidsynth wrote more than {cap} bytes (runaway note?)"
        if problem:
            proc.kill()
            proc.wait()
            wav_path.unlink(missing_ok=True)
            raise MelodexError(f"{midi_path}: {problem}")
        time.sleep(0.02)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0 or not wav_path.exists():
        raise MelodexError(f"{midi_path}: fluidsynth failed ({proc.returncode}): {stderr.strip()}")


def finish_audio(
    audio: np.ndarray, *, seconds: float, sr: int = SAMPLE_RATE, target_dbfs: float = -18.0
) -> np.ndarray:
    """Cut to ``seconds``, trim trailing silence, fade out and normalise loudness moderately.

    ``audio`` is ``(n, channels)`` float. A cut in the middle of the music fades over 1.5 s; the RMS
    is brought to ``target_dbfs`` unless that would push the peak above -1 dBFS.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[:, None]
    n_max = int(round(seconds * sr))
    cut = audio.shape[0] > n_max
    audio = audio[:n_max]
    level = np.abs(audio).max(axis=1)
    loud = np.nonzero(level > 10 ** (-60 / 20))[0]
    if loud.size == 0:
        raise MelodexError("rendered audio is silent")
    end = min(audio.shape[0], loud[-1] + int(0.3 * sr))
    audio = audio[:end].copy()
    fade = int((1.5 if cut else 0.05) * sr)
    fade = min(fade, audio.shape[0])
    audio[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
    rms = float(np.sqrt(np.mean(audio**2)))
    peak = float(np.abs(audio).max())
    gain = min(10 ** (target_dbfs / 20) / max(rms, 1e-9), 10 ** (-1 / 20) / max(peak, 1e-9))
    return (audio * gain).astype(np.float32)


def encode(
    audio: np.ndarray,
    path: Path,
    *,
    tags: Mapping[str, str],
    sr: int = SAMPLE_RATE,
    timeout: float = 120.0,
) -> None:
    """Encode ``audio`` to ``path`` (format from the suffix) with ``tags``, atomically.

    flac is written with soundfile and tagged with mutagen; ogg, mp3 and m4a go through ffmpeg with
    ``-metadata``. The file appears under its final name only once complete.
    """
    fmt = path.suffix.lstrip(".").lower()
    tmp = path.with_name(f".{path.stem}.part{path.suffix}")
    try:
        if fmt == "flac":
            sf.write(tmp, audio, sr, format="FLAC", subtype="PCM_16")
            from mutagen.flac import FLAC

            tagged = FLAC(tmp)
            for name, value in tags.items():
                tagged[name] = value
            tagged.save()
        elif fmt in _FFMPEG_CODECS:
            pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
            cmd = ["ffmpeg", "-nostdin", "-y", "-loglevel", "error"]
            cmd += ["-f", "s16le", "-ar", str(sr), "-ac", str(audio.shape[1]), "-i", "pipe:0"]
            cmd += _FFMPEG_CODECS[fmt]
            for name, value in tags.items():
                cmd += ["-metadata", f"{name}={value}"]
            cmd.append(str(tmp))
            done = subprocess.run(cmd, input=pcm.tobytes(), capture_output=True, timeout=timeout)
            if done.returncode != 0:
                raise MelodexError(f"{path}: ffmpeg failed: {done.stderr.decode().strip()}")
        else:
            raise MelodexError(f"{path}: unknown audio format {fmt!r}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def render_parts(
    parts: Sequence[Part],
    path: Path,
    *,
    seconds: float,
    soundfont: Path,
    tags: Mapping[str, str],
    work_dir: Path,
) -> float:
    """Render ``parts`` to the audio file ``path`` (at most ``seconds`` long); return seconds."""
    work_dir.mkdir(parents=True, exist_ok=True)
    midi_path = work_dir / f"{path.stem}.mid"
    wav_path = work_dir / f"{path.stem}.wav"
    try:
        write_midi(parts, midi_path)
        render_midi(midi_path, wav_path, soundfont=soundfont, max_seconds=seconds + 5.0)
        raw, sr = sf.read(wav_path, dtype="float32", always_2d=True)
        audio = finish_audio(raw, seconds=seconds, sr=sr)
        encode(audio, path, tags=tags, sr=sr)
    finally:
        midi_path.unlink(missing_ok=True)
        wav_path.unlink(missing_ok=True)
    return audio.shape[0] / sr
