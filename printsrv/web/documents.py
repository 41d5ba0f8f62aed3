"""PDFs of the ledger's documents: *Berita Acara Pemusnahan* (destruction of spoiled blanks)
and *Berita Acara Serah Terima* (blanks received or handed over), with the serials, counts by
cause and a signatures block. Indonesian, as the documents are filed."""

from __future__ import annotations

import io
from typing import Any

from printsrv.ledger.models import DestructionRecord, HandoverKind, HandoverRecord
from printsrv.localtime import office_zone
from printsrv.models import Office
from printsrv.paperwork import markup
from printsrv.web.labels import CAUSE_ID, METHOD_ID
from printsrv.web.stock_services import split_person


def _doc(title: str) -> tuple[io.BytesIO, Any, dict[str, Any]]:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate

    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=15 * mm,
        bottomMargin=15 * mm, title=title, author="ktp-printsrv",
    )
    styles = getSampleStyleSheet()
    return buf, doc, {
        "title": styles["Title"],
        "body": styles["BodyText"],
        "small": styles["BodyText"].clone("small", fontSize=8, leading=10),
        "h": styles["Heading3"],
    }


def _grid() -> Any:
    from reportlab.lib import colors
    from reportlab.platypus import TableStyle

    return TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde4f0")),
            ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
            ("FONTSIZE", (0, 0), (-1, -1), 8.5),
        ]
    )


def _serial_table(serials: list[str]) -> Any:
    """Serials in six columns (a carton of a few hundred fits a page or two)."""
    from reportlab.platypus import Table

    cols = 6
    rows = [["No. seri blangko"] + [""] * (cols - 1)]
    for i in range(0, len(serials), cols):
        chunk = serials[i : i + cols]
        rows.append(chunk + [""] * (cols - len(chunk)))
    table = Table(rows, repeatRows=1)
    style = _grid()
    style.add("SPAN", (0, 0), (-1, 0))
    table.setStyle(style)
    return table


def _signatures(people: list[tuple[str, str, str]]) -> Any:
    """A signatures block: role, space to sign, name and NIP, side by side."""
    from reportlab.lib.units import mm
    from reportlab.platypus import Table, TableStyle

    row_role = [p[0] for p in people]
    row_space = ["" for _ in people]
    row_name = [f"( {p[1]} )" for p in people]
    row_nip = [f"NIP/No. identitas: {p[2]}" if p[2] else "" for p in people]
    table = Table([row_role, row_space, row_name, row_nip], rowHeights=[None, 22 * mm, None, None])
    table.setStyle(
        TableStyle(
            [
                ("ALIGN", (0, 0), (-1, -1), "CENTER"),
                ("FONTSIZE", (0, 0), (-1, -1), 8.5),
                ("LINEBELOW", (0, 1), (-1, 1), 0.4, "#888888"),
            ]
        )
    )
    return table


def destruction_pdf(
    record: DestructionRecord, office: Office, contents: dict[str, Any]
) -> bytes:
    """The *Berita Acara Pemusnahan* of ``record``: who, where, when, counts by cause, every
    serial destroyed, and the signatures of both officers and the witness."""
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Spacer, Table

    buf, doc, st = _doc(f"Berita Acara Pemusnahan {record.number}")
    zone = office_zone(office.code)
    when = record.document_date or zone.local(record.created_at).date()
    method = METHOD_ID.get(record.method, record.method)
    story: list[Any] = [
        Paragraph("BERITA ACARA PEMUSNAHAN BLANGKO KTP-EL RUSAK", st["title"]),
        Paragraph(f"Nomor: {markup(record.number)}", st["body"]),
        Paragraph(f"{office.code} {markup(office.name)}", st["body"]),
        Spacer(1, 4 * mm),
        Paragraph(
            f"Pada tanggal {when.strftime('%d-%m-%Y')}"
            + (f" bertempat di {markup(record.place)}" if record.place else "")
            + f", telah dilakukan pemusnahan ({markup(method)}) atas {record.count} keping "
            "blangko KTP-el rusak/tidak valid yang telah dipotong sudutnya, dengan rincian "
            "sebagai berikut:",
            st["body"],
        ),
        Spacer(1, 3 * mm),
    ]
    causes = [["Penyebab kerusakan", "Jumlah"]]
    causes += [[CAUSE_ID.get(c, c), str(n)] for c, n in contents["causes"].items()]
    causes.append(["Jumlah", str(sum(contents["causes"].values()))])
    table = Table(causes, colWidths=[120 * mm, 30 * mm])
    style = _grid()
    style.add("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold")
    table.setStyle(style)
    story += [table, Spacer(1, 4 * mm), _serial_table(contents["serials"]), Spacer(1, 6 * mm)]
    story.append(Paragraph(
        "Demikian berita acara ini dibuat dengan sebenarnya untuk dipergunakan sebagaimana "
        "mestinya.", st["body"]))
    story.append(Spacer(1, 6 * mm))
    o1, o2, w = (split_person(p) for p in (record.officer_1, record.officer_2, record.witness))
    witness_role = f"Saksi ({record.witness_role})" if record.witness_role else "Saksi"
    story.append(_signatures([("Petugas I", *o1), ("Petugas II", *o2), (witness_role, *w)]))
    story.append(Spacer(1, 4 * mm))
    story.append(Paragraph(
        f"Dicatat oleh {markup(record.actor)} pada {zone.format(record.created_at)} "
        "(ktp-printsrv).", st["small"]))
    doc.build(story)
    return buf.getvalue()


def handover_pdf(
    record: HandoverRecord,
    to_office: Office,
    from_office: Office | None,
    contents: dict[str, Any],
) -> bytes:
    """The *Berita Acara Serah Terima* of ``record``: parties, range, count and serials."""
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Spacer, Table

    buf, doc, st = _doc(f"Berita Acara Serah Terima {record.number}")
    zone = office_zone((from_office or to_office).code)
    when = record.document_date or zone.local(record.created_at).date()
    giver = f"{from_office.code} {from_office.name}" if from_office else record.from_party or "-"
    kind = "Penerimaan" if record.kind is HandoverKind.RECEIPT else "Pemindahan"
    story: list[Any] = [
        Paragraph("BERITA ACARA SERAH TERIMA BLANGKO KTP-EL", st["title"]),
        Paragraph(f"Nomor: {markup(record.number)} ({kind})", st["body"]),
        Spacer(1, 4 * mm),
    ]
    rows = [
        ["Butir", "Keterangan"],
        ["Tanggal", when.strftime("%d-%m-%Y")],
        ["Pihak yang menyerahkan", giver],
        ["Pihak yang menerima", f"{to_office.code} {to_office.name}"],
        ["Karton", record.carton or "-"],
        ["Nomor seri", f"{record.first_serial} s.d. {record.last_serial}"],
        ["Jumlah", f"{record.count} keping"],
    ]
    table = Table(rows, colWidths=[55 * mm, 105 * mm])
    table.setStyle(_grid())
    story += [table, Spacer(1, 4 * mm), _serial_table(contents["serials"]), Spacer(1, 8 * mm)]
    story.append(_signatures([("Yang menyerahkan", *split_person(record.giver)),
                              ("Yang menerima", *split_person(record.receiver))]))
    story.append(Spacer(1, 4 * mm))
    story.append(Paragraph(
        f"Dicatat oleh {markup(record.actor)} pada {zone.format(record.created_at)} "
        "(ktp-printsrv).", st["small"]))
    doc.build(story)
    return buf.getvalue()


def collection_receipt_pdf(collection: Any, record: Any, office: Office) -> bytes:
    """The *Tanda Terima KTP-el* of a card handed over at the desk: the card, who took it on
    whose authority, and the signatures (the collector's as drawn at the desk, if any)."""
    from reportlab.lib.units import mm
    from reportlab.platypus import Image, Paragraph, Spacer, Table

    from printsrv.desk.service import RELATIONS

    buf, doc, st = _doc(f"Tanda Terima KTP-el {collection.receipt_number}")
    zone = office_zone(office.code)
    story: list[Any] = [
        Paragraph("TANDA TERIMA KTP-EL", st["title"]),
        Paragraph(f"Nomor: {markup(collection.receipt_number)}", st["body"]),
        Paragraph(f"{office.code} {markup(office.name)}", st["body"]),
        Spacer(1, 4 * mm),
    ]
    rows = [
        ["Butir", "Keterangan"],
        ["Waktu penyerahan", zone.format(collection.at)],
        ["NIK pemilik", record.nik],
        ["Nama pemilik", Paragraph(markup(record.nama), st["small"])],
        ["No. permohonan", record.request_id],
        ["Diterima oleh", Paragraph(markup(collection.collector_name), st["small"])],
        ["Hubungan", RELATIONS.get(collection.relation, collection.relation)],
        ["NIK penerima", collection.collector_nik],
        ["No. surat kuasa", Paragraph(markup(collection.authorization or "-"), st["small"])],
    ]
    table = Table(rows, colWidths=[55 * mm, 105 * mm])
    table.setStyle(_grid())
    story += [table, Spacer(1, 8 * mm)]
    people = [("Yang menerima", collection.collector_name, collection.collector_nik),
              ("Petugas loket", collection.officer, "")]  # fmt: skip
    if collection.witness:
        people.append(("Saksi", collection.witness, ""))
    story.append(_signatures(people))
    if collection.signature_png:
        story += [Spacer(1, 2 * mm), Paragraph("Tanda tangan penerima (di loket):", st["small"]),
                  Image(io.BytesIO(collection.signature_png), width=50 * mm, height=18 * mm,
                        kind="proportional")]  # fmt: skip
    story.append(Spacer(1, 4 * mm))
    story.append(Paragraph("Dicatat oleh ktp-printsrv.", st["small"]))
    doc.build(story)
    return buf.getvalue()
