"""Small payloads whose headers claim huge images (issue 11, B3)."""
import struct
import zlib

import cv2
import numpy as np


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real 64x48 jpeg whose frame header (SOF0) is rewritten to say width x height."""
    data = bytearray(cv2.imencode('.jpg', np.full((48, 64, 3), 128, np.uint8))[1].tobytes())
    sof = data.index(b'\xff\xc0')
    data[sof + 5:sof + 9] = struct.pack('>HH', height, width)
    return bytes(data)


def png_1bit(width: int, height: int) -> bytes:
    """A valid all-black 1-bit greyscale png: a few tens of KB for 20000x20000."""
    def chunk(kind, body):
        return struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body))
    row = bytes(1 + (width + 7) // 8)  # filter byte 0, then packed bits
    idat = zlib.compressobj(9)
    body = b''.join(idat.compress(row) for _ in range(height)) + idat.flush()
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 1, 0, 0, 0, 0))
            + chunk(b'IDAT', body) + chunk(b'IEND', b''))
