"""One PDF report per study: chosen key slices of each series, captioned, made to PDF/A-2b's rules.

Key slices: `--slices 25%,50%,75%` picks, in each series, the images at those fractions of the series
ordered by Image Position (Patient) along the slice normal (by Instance Number where there is no
position). Each page holds one image, rendered as the rendered resource shows it (stored window) and
turned for display like PNG exports, with a caption: Study Date, Modality, Series Description and
which slice it is. The caption is drawn into the page image, so the PDF embeds no font.

PDF/A-2b (ISO 19005-2, level B): Pillow writes the pages; pypdf adds what PDF/A asks of the document:
XMP metadata (pdfaid part 2, conformance B; title, producer, dates, matching the document information
dictionary), an sRGB output intent with its ICC profile, and file identifiers. Nothing in the report
names the patient: the captions hold only the attributes above, taken from the data set as exported
(de-identified when the export is).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from PIL import Image, ImageCms, ImageDraw, ImageFont
from pydicom.dataset import Dataset
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    StreamObject,
    TextStringObject,
)

from app.imaging.display import ImageFormat, RenderOptions, render_frame
from app.lifecycle.export_images import decoded_frames, display_turn, image_orientation

PAGE_SIZE = (1240, 1754)  # A4 at 150 dots per inch
PAGE_RESOLUTION = 150.0
MARGIN = 60
CAPTION_HEIGHT = 140
PRODUCER = "Fovea"


class SliceSpecError(ValueError):
    """A `--slices` value that is not a list of percentages."""


def parse_slices(text: str) -> tuple[float, ...]:
    """`25%,50%,75%` as fractions (0.25, 0.5, 0.75)."""
    fractions = []
    for part in text.split(","):
        number = part.strip().removesuffix("%")
        try:
            value = float(number)
        except ValueError:
            raise SliceSpecError(f"{part.strip()!r} is not a percentage (e.g. 25%,50%,75%)") from None
        if not 0 <= value <= 100:
            raise SliceSpecError(f"{part.strip()!r} is not between 0% and 100%")
        fractions.append(value / 100)
    return tuple(fractions)


def slice_position(ds: Dataset) -> float | None:
    """Where the image lies along its normal (mm), from Image Position and Orientation (Patient)."""
    orientation = image_orientation(ds, 1)
    position = ds.get("ImagePositionPatient")
    if orientation is None or not position or len(position) != 3:
        return None
    normal = np.cross(np.array(orientation[:3], float), np.array(orientation[3:], float))
    return float(np.dot(normal, np.array([float(v) for v in position])))


def pick_key_slices(headers: Sequence[Dataset], fractions: Sequence[float]) -> list[tuple[int, int]]:
    """(index into `headers`, slice number from 1) of the slices at `fractions` of the ordered series."""
    positions = [slice_position(ds) for ds in headers]
    if all(p is not None for p in positions):
        order = sorted(range(len(headers)), key=lambda i: (positions[i], i))
    else:
        order = sorted(range(len(headers)), key=lambda i: (int(headers[i].get("InstanceNumber") or 0), i))
    chosen = dict.fromkeys(round(fraction * (len(order) - 1)) for fraction in fractions)
    return [(order[rank], rank + 1) for rank in sorted(chosen)]


@dataclass(frozen=True, slots=True)
class ReportPage:
    image: Image.Image  # the page, RGB
    caption: str


def _text(ds: Dataset, keyword: str, missing: str) -> str:
    value = str(ds.get(keyword, "") or "").strip()
    return value or missing


def _date(ds: Dataset) -> str:
    value = _text(ds, "StudyDate", "")
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 and value.isdigit() else "no date"


def report_page(ds: Dataset, slice_number: int, slice_count: int) -> ReportPage:
    """The page of one key slice: its first frame rendered and turned for display, and its caption."""
    frame = next(decoded_frames(ds))
    rendered = render_frame(frame, ds, RenderOptions(image_format=ImageFormat.JPEG), frame_number=1)
    samples = display_turn(image_orientation(ds, 1)).apply(np.asarray(rendered.image))
    picture = Image.fromarray(samples).convert("RGB")
    caption = (
        f"Study Date {_date(ds)}   Modality {_text(ds, 'Modality', '-')}\n"
        f"Series {_text(ds, 'SeriesDescription', '(no description)')}\n"
        f"Slice {slice_number} of {slice_count}"
    )
    page = Image.new("RGB", PAGE_SIZE, "white")
    room = (PAGE_SIZE[0] - 2 * MARGIN, PAGE_SIZE[1] - 2 * MARGIN - CAPTION_HEIGHT)
    scale = min(room[0] / picture.width, room[1] / picture.height)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    page.paste(picture.resize(size, Image.Resampling.LANCZOS), ((PAGE_SIZE[0] - size[0]) // 2, MARGIN))
    draw = ImageDraw.Draw(page)
    draw.multiline_text(
        (MARGIN, MARGIN + size[1] + 30),
        caption,
        fill="black",
        font=ImageFont.load_default(size=32),
        spacing=12,
    )
    return ReportPage(page, caption)


def _xmp(title: str, created: str) -> bytes:
    return f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:pdf="http://ns.adobe.com/pdf/1.3/">
   <pdfaid:part>2</pdfaid:part>
   <pdfaid:conformance>B</pdfaid:conformance>
   <dc:format>application/pdf</dc:format>
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{title}</rdf:li></rdf:Alt></dc:title>
   <xmp:CreateDate>{created}</xmp:CreateDate>
   <xmp:ModifyDate>{created}</xmp:ModifyDate>
   <xmp:CreatorTool>{PRODUCER}</xmp:CreatorTool>
   <pdf:Producer>{PRODUCER}</pdf:Producer>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>""".encode()


def report_pdf(pages: Sequence[ReportPage], title: str, *, now: datetime | None = None) -> bytes:
    """The pages as one PDF/A-2b document titled `title` (no identifier should be in the title)."""
    if not pages:
        raise ValueError("a report needs at least one page")
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    drawn = io.BytesIO()
    first, *rest = [page.image for page in pages]
    first.save(drawn, format="PDF", save_all=True, append_images=rest, resolution=PAGE_RESOLUTION)
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(drawn.getvalue())))
    pdf_date = moment.strftime("D:%Y%m%d%H%M%S+00'00'")
    writer.add_metadata(
        {
            "/Title": title,
            "/Producer": PRODUCER,
            "/Creator": PRODUCER,
            "/CreationDate": pdf_date,
            "/ModDate": pdf_date,
        }
    )
    writer.xmp_metadata = _xmp(title, moment.strftime("%Y-%m-%dT%H:%M:%SZ"))
    icc = StreamObject()
    icc.set_data(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    icc[NameObject("/N")] = NumberObject(3)  # RGB
    intent = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/OutputIntent"),
            NameObject("/S"): NameObject("/GTS_PDFA1"),
            NameObject("/OutputConditionIdentifier"): TextStringObject("sRGB"),
            NameObject("/Info"): TextStringObject("sRGB IEC61966-2.1"),
            NameObject("/DestOutputProfile"): writer._add_object(icc),
        }
    )
    writer.root_object[NameObject("/OutputIntents")] = ArrayObject([intent])
    writer.generate_file_identifiers()
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
