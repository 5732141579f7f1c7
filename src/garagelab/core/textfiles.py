"""Reading a text file a user names (a data CSV, a model config, a candidate program), so that a
file in another encoding is refused with its name and the fix, not with a decoder's traceback:
Excel's "Unicode text" export is UTF-16, and a binary given by mistake is not text at all."""

from __future__ import annotations

from pathlib import Path

from garagelab.core.errors import UserError

UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")


def read_user_text(path: Path) -> str:
    """The file's text, read as UTF-8 with a leading byte-order mark dropped (Excel's "CSV UTF-8"
    writes one, and it would otherwise stick to the first column's name). The caller checks that
    the file exists, with its own advice."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        if data[:2] in UTF16_MARKS:
            raise UserError(f"{path}: UTF-16 text, not UTF-8; save it as UTF-8 (Excel: Save As > CSV UTF-8)") from None
        raise UserError(
            f"{path}: not UTF-8 text (byte {data[error.start]:#04x} at offset {error.start}); "
            "give a text file saved as UTF-8"
        ) from None
