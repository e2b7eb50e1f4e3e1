"""Delivered heads (seed 4.3): ``NNNNNNp_head.txt``, ``_ahed.txt`` and the image-by-image names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from spica.astromatic.scamp import plain_head_text, read_heads
from spica.paths import AHEAD_SUFFIX, HEAD_SUFFIX, exposure_name, scamp_head_name

__all__ = ["deliver_heads", "deliver_image_ahead"]


def deliver_heads(
    *,
    stack_list: Sequence[int],
    heads_dir: str | Path,
    aheads: Mapping[int, str | Path],
    out_dir: str | Path,
    image_head_out: str | Path | None = None,
) -> list[Path]:
    """Write the heads a product delivers (seed, product table and section 4).

    For every exposure of the stack list, SCAMP's ``NNNNNNp.head`` of this
    calibration run becomes ``NNNNNNp_head.txt`` (astrometry and rescaled
    photometry, one block per CCD), and for exposures of photometric nights
    the ``.ahead`` SCAMP anchored them with becomes ``NNNNNNp_ahed.txt``. The
    text is SCAMP's, made plain ASCII (SCAMP's one non-ASCII character in a
    ``COMMENT`` line is dropped) so that any FITS reader takes it.

    Parameters
    ----------
    stack_list : sequence of int
        Odometers of the product's stack list.
    heads_dir : str or Path
        SCAMP's output folder of the run (``NNNNNNp.head`` files).
    aheads : mapping of int to path
        The ``.ahead`` of each exposure (``PHOTFLAG`` says photometric).
    out_dir : str or Path
        Folder to write (created).
    image_head_out : str or Path, optional
        Image-by-image mode: also write the one exposure's head under the
        product's name (``546891p_V0001_head.txt``).

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    FileNotFoundError
        Image-by-image mode: SCAMP wrote no head for the image. (A stack's
        exposure without a head is skipped: its accept summary rejects it.)
    ValueError
        ``image_head_out`` given for a list of more than one exposure.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    expnums = sorted(int(e) for e in stack_list)
    if image_head_out is not None and len(expnums) != 1:
        raise ValueError(f"an image-by-image product has one exposure, not {expnums}")
    for expnum in expnums:
        head = Path(heads_dir) / scamp_head_name(expnum)
        if not head.is_file():
            if image_head_out is not None:  # the product's own head cannot be made
                raise FileNotFoundError(f"SCAMP wrote no head for {exposure_name(expnum)}: {head}")
            continue  # the accept summary rejects it and says why; the others are delivered
        text = plain_head_text(head)
        target = out / (exposure_name(expnum) + HEAD_SUFFIX)
        target.write_text(text, encoding="ascii")
        written.append(target)
        if image_head_out is not None:
            Path(image_head_out).write_text(text, encoding="ascii")
            written.append(Path(image_head_out))
        ahead = Path(aheads[expnum])
        if any(h.get("PHOTFLAG", False) for h in read_heads(ahead)):
            target = out / (exposure_name(expnum) + AHEAD_SUFFIX)
            target.write_text(ahead.read_text(encoding="ascii"), encoding="ascii")
            written.append(target)
    return written


def deliver_image_ahead(*, heads_dir: str | Path, out: str | Path) -> Path:
    """Image-by-image mode, photometric image: its ``.ahead`` under the product's name.

    Copies the one ``NNNNNNp_ahed.txt`` that :func:`deliver_heads` wrote for
    the image to ``546891p_V0001_ahed.txt`` (seed, product table).

    Raises
    ------
    FileNotFoundError
        No ``_ahed.txt`` in ``heads_dir``: the image was not taken on a
        photometric night, so it has none to deliver.
    ValueError
        More than one: ``heads_dir`` is not an image-by-image product's.
    """
    found = sorted(Path(heads_dir).glob("*" + AHEAD_SUFFIX))
    if not found:
        raise FileNotFoundError(f"no {AHEAD_SUFFIX} in {heads_dir}: the image is not photometric")
    if len(found) > 1:
        raise ValueError(f"an image-by-image product has one exposure, found {[p.name for p in found]}")
    Path(out).write_text(found[0].read_text(encoding="ascii"), encoding="ascii")
    return Path(out)
