#!/usr/bin/env python3
"""Reads a TensorBoard run directory with TensorBoard's own EventAccumulator and prints JSON.

Usage: tensorboard_reader.py DIR

Output on stdout:
  {"scalars": {tag: [[step, value, wall_time], ...]},
   "images":  {tag: [{"step", "width", "height", "decoded_width", "decoded_height",
                      "decoded_by"}, ...]}}

Every image's bytes are decoded (with PIL when importable, else the PNG signature and IHDR
header are checked), and the decoded size is reported beside the size the event states.

Exit status: 0 read; 2 usage; 3 TensorBoard is not importable (the Rust test skips on this
unless RENSOU_REQUIRE_PYTHON=1, when it fails); 4 an image does not decode.
"""

import io
import json
import struct
import sys

MISSING = 3
BAD_IMAGE = 4


def decode_png(data):
    """(width, height, how) of PNG bytes; raises ValueError when they are not a PNG."""
    try:
        from PIL import Image
    except ImportError:
        Image = None
    if Image is not None:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != "PNG":
                raise ValueError("PIL reads a %s, not a PNG" % im.format)
            im.load()  # decodes every pixel
            return im.width, im.height, "PIL"
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("no PNG signature and IHDR header")
    width, height = struct.unpack(">II", data[16:24])
    return width, height, "IHDR"


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        from tensorboard.backend.event_processing import event_accumulator as ea
    except ImportError as e:
        print("tensorboard is not importable with %s: %s" % (sys.executable, e), file=sys.stderr)
        return MISSING

    # 0 keeps every event of every kind (no reservoir sampling).
    guidance = {kind: 0 for kind in ea.DEFAULT_SIZE_GUIDANCE}
    acc = ea.EventAccumulator(sys.argv[1], size_guidance=guidance)
    acc.Reload()
    tags = acc.Tags()

    scalars = {
        tag: [[e.step, e.value, e.wall_time] for e in acc.Scalars(tag)]
        for tag in tags.get(ea.SCALARS, [])
    }
    images = {}
    for tag in tags.get(ea.IMAGES, []):
        images[tag] = []
        for e in acc.Images(tag):
            try:
                width, height, how = decode_png(e.encoded_image_string)
            except Exception as err:  # any decoder failure
                print(
                    "image %r at step %d does not decode: %s" % (tag, e.step, err),
                    file=sys.stderr,
                )
                return BAD_IMAGE
            images[tag].append(
                {
                    "step": e.step,
                    "width": e.width,
                    "height": e.height,
                    "decoded_width": width,
                    "decoded_height": height,
                    "decoded_by": how,
                }
            )
    json.dump({"scalars": scalars, "images": images}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
