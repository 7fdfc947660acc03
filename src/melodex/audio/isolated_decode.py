"""Decode an untrusted upload in a child process, so a time limit can kill it.

It lives among the decoders, not in ``melodex.serve``, so that starting it imports only them
(0.3 s) and not the server's package (FastAPI and the routes: 1 s more per upload).

``python -m melodex.audio.isolated_decode SRC DST SR MAX_SECONDS`` decodes ``SRC`` to mono float32 at
``SR`` Hz (at most ``MAX_SECONDS``) and writes it to ``DST`` as a float WAV. Exit code 0 on
success, 2 with the reason on stderr when the file is not decodable audio.
"""

from __future__ import annotations

import resource
import sys

MEMORY_LIMIT = 4 << 30  # address space of the decoder: a bomb of a header cannot eat the host


def main(argv: list[str]) -> int:
    src, dst, sr, max_seconds = argv[0], argv[1], int(argv[2]), float(argv[3])
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    import soundfile as sf

    from melodex.audio import load_audio
    from melodex.errors import AudioDecodeError

    try:
        y = load_audio(src, sr=sr, duration=max_seconds)
    except AudioDecodeError as exc:
        print(exc.reason, file=sys.stderr)
        return 2
    except MemoryError:
        print("decoding needs too much memory", file=sys.stderr)
        return 2
    except Exception as exc:  # a decoder bug: the client gets its type, never its text
        print(f"the decoder failed ({type(exc).__name__})", file=sys.stderr)
        return 2
    sf.write(dst, y, sr, subtype="FLOAT", format="WAV")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
