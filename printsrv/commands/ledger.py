"""``ledger``: the blank and ribbon ledger from the command line.

Every sub-command runs in one unit of work: it applies completely or not at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from printsrv.config import load_settings
from printsrv.products import DEFAULT_STOCK_TYPE, STOCK_TYPES


def _serial_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("blanks (a serial range, or serials one by one)")
    g.add_argument(
        "--first", metavar="SERIAL", help="first serial of the range, e.g. KTP2026-00000001"
    )
    g.add_argument("--last", metavar="SERIAL", help="last serial of the range (same prefix)")
    g.add_argument("--serial", action="append", default=[], metavar="SERIAL", help="repeatable")


def _actor(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--actor", default="cli", help="who acts (recorded in the journal and audit log)"
    )


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not YYYY-MM-DD") from exc


def register(sub: Any) -> None:
    from printsrv.ledger.models import AdjustmentKind, ConsumableKind, SpoilCause

    ledger = sub.add_parser("ledger", help="blank and ribbon stock: receive, move, report, check")
    lsub = ledger.add_subparsers(dest="ledger_command", required=True, metavar="ACTION")

    p = lsub.add_parser("receive", help="receive a carton of blanks under a handover record")
    p.add_argument("--office", required=True, help="receiving office PP.KK or PP.KK.CC")
    _serial_args(p)
    p.add_argument("--handover", required=True, help="Berita Acara Serah Terima number")
    p.add_argument("--carton", help="carton number")
    p.add_argument("--from", dest="from_party", default="", help="who handed it over")
    p.add_argument("--date", type=_date, help="date of the handover record (YYYY-MM-DD)")
    p.add_argument("--note")
    _stock_type_arg(p, DEFAULT_STOCK_TYPE)
    _signatory_args(p)
    _actor(p)
    p.set_defaults(func=cmd_receive)

    p = lsub.add_parser("transfer", help="hand in-stock blanks to another office")
    p.add_argument("--from", dest="from_office", required=True, help="office code giving")
    p.add_argument("--to", dest="to_office", required=True, help="office code receiving")
    _serial_args(p)
    p.add_argument("--handover", required=True, help="Berita Acara Serah Terima number")
    p.add_argument("--date", type=_date)
    p.add_argument("--note")
    _signatory_args(p)
    _actor(p)
    p.set_defaults(func=cmd_transfer)

    p = lsub.add_parser("station", help="create or update a print station")
    p.add_argument("--name", required=True)
    p.add_argument("--office", required=True)
    p.add_argument("--cups-queue", default="")
    p.add_argument("--reader", default="")
    p.add_argument("--profile", default="")
    _actor(p)
    p.set_defaults(func=cmd_station)

    p = lsub.add_parser("load", help="load blanks into a station's hopper, in serial order")
    p.add_argument("--station", required=True)
    p.add_argument("--count", type=int, help="load the N lowest in-stock serials")
    _serial_args(p)
    _stock_type_arg(p, None)
    _actor(p)
    p.set_defaults(func=cmd_load)

    p = lsub.add_parser("unload", help="take blanks out of a hopper back to stock (default all)")
    p.add_argument("--station", required=True)
    _serial_args(p)
    _actor(p)
    p.set_defaults(func=cmd_unload)

    p = lsub.add_parser("spoil", help="record spoiled (damaged/invalid) blanks with a cause")
    _serial_args(p)
    p.add_argument("--cause", required=True, choices=[c.value for c in SpoilCause])
    p.add_argument("--record-id", type=int)
    p.add_argument("--note")
    _actor(p)
    p.set_defaults(func=cmd_spoil)

    p = lsub.add_parser("destroy", help="destroy spoiled blanks under a Berita Acara Pemusnahan")
    p.add_argument("--office", required=True)
    p.add_argument("--record", dest="number", required=True, help="destruction record number")
    p.add_argument("--officer", action="append", required=True, help="give exactly two")
    p.add_argument("--witness", required=True)
    p.add_argument("--witness-role", default="", help="e.g. Inspektorat, Satpol PP")
    p.add_argument("--place", default="")
    p.add_argument("--date", type=_date)
    _serial_args(p)
    _actor(p)
    p.set_defaults(func=cmd_destroy)

    p = lsub.add_parser("adjust", help="request a stock adjustment (needs a second person)")
    p.add_argument("--office", required=True)
    p.add_argument("--kind", required=True, choices=[k.value for k in AdjustmentKind])
    p.add_argument("--to-state", choices=["in_stock", "in_hopper"], help="for correct_state")
    p.add_argument("--station", help="for correct_state to in_hopper")
    p.add_argument("--reason", required=True)
    _serial_args(p)
    _actor(p)
    p.set_defaults(func=cmd_adjust)

    p = lsub.add_parser("approve", help="approve (or --reject) a pending adjustment")
    p.add_argument("adjustment", help="adjustment id (ADJ-7 or 7)")
    p.add_argument("--reject", action="store_true")
    p.add_argument("--note")
    _actor(p)
    p.set_defaults(func=cmd_approve)

    p = lsub.add_parser("ribbon", help="ribbons and retransfer film")
    rsub = p.add_subparsers(dest="ribbon_command", required=True, metavar="ACTION")
    kinds = [k.value for k in ConsumableKind]
    r = rsub.add_parser("receive", help="receive a ribbon or film roll at an office")
    r.add_argument("--office", required=True)
    r.add_argument("--serial", required=True)
    r.add_argument("--kind", choices=kinds, default="ribbon")
    r.add_argument("--type", dest="type_", default="YMCKO", help="panel sequence, e.g. YMCKO")
    r.add_argument("--capacity", type=int, required=True, help="prints (panel sets) per roll")
    r.add_argument("--reference", help="delivery document")
    _actor(r)
    r.set_defaults(func=cmd_ribbon_receive)
    r = rsub.add_parser("load", help="load a roll into a station")
    r.add_argument("--station", required=True)
    r.add_argument("--serial", required=True)
    r.add_argument("--kind", choices=kinds, default="ribbon")
    _actor(r)
    r.set_defaults(func=cmd_ribbon_load)
    r = rsub.add_parser("transfer", help="hand an in-stock roll to another office")
    r.add_argument("--serial", required=True)
    r.add_argument("--kind", choices=kinds, default="ribbon")
    r.add_argument("--to", required=True, dest="to_office", help="office code")
    r.add_argument("--handover", required=True, help="Berita Acara Serah Terima number")
    _actor(r)
    r.set_defaults(func=cmd_ribbon_transfer)
    r = rsub.add_parser("replace", help="finish the loaded roll and load another")
    r.add_argument("--station", required=True)
    r.add_argument("--serial", required=True, help="the new roll")
    r.add_argument("--kind", choices=kinds, default="ribbon")
    r.add_argument("--printer-level", type=int, help="last level the printer reported")
    _actor(r)
    r.set_defaults(func=cmd_ribbon_replace)

    p = lsub.add_parser("check", help="prove the ledger balances; non-zero exit when it does not")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)

    p = lsub.add_parser("report", help="monthly stock report of an office")
    p.add_argument("--office", required=True)
    p.add_argument("--month", required=True,
                   help="YYYY-MM (the office's local month: WIB, WITA or WIT)")
    p.add_argument("--format", choices=["json", "csv", "pdf"], default="json")
    p.add_argument("--lang", choices=["id", "en"], default="id",
                   help="language of the PDF and CSV (default: Bahasa Indonesia)")
    p.add_argument("--out", type=Path, help="file to write (default: standard output; a PDF "
                   "goes to laporan-stok-OFFICE-MONTH.pdf in the current folder)")
    sig = p.add_argument_group("signatures (default: the setting report_signatories)")
    sig.add_argument("--prepared-name", default="", help="'Dibuat oleh': name")
    sig.add_argument("--prepared-nip", default="", help="'Dibuat oleh': NIP")
    sig.add_argument("--head-name", default="", help="'Mengetahui' (head of office): name")
    sig.add_argument("--head-nip", default="", help="'Mengetahui': NIP")
    sig.add_argument("--head-title", default="", help="'Mengetahui': title, e.g. 'Kepala Dinas'")
    p.set_defaults(func=cmd_report)

    p = lsub.add_parser("show", help="a blank and its journal, or an office's stock by state")
    p.add_argument("serial", nargs="?")
    p.add_argument("--office")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)


# ---------------------------------------------------------------------------- helpers


def _serials(args: argparse.Namespace, *, required: bool = True) -> list[str]:
    from printsrv.ledger.errors import LedgerError
    from printsrv.ledger.serials import parse_serial, serial_range

    serials = [str(parse_serial(s)) for s in args.serial]
    if args.first or args.last:
        if not (args.first and args.last):
            raise LedgerError("give both --first and --last")
        serials += serial_range(args.first, args.last)
    if required and not serials:
        raise LedgerError("name the blanks: --first SERIAL --last SERIAL, or --serial SERIAL")
    return list(dict.fromkeys(serials))


def _local(at: Any, office: str) -> str:
    """``at`` in the office's local time with its zone name."""
    from printsrv.localtime import office_zone

    return office_zone(office).format(at, seconds=True)


def _uow() -> Any:
    from printsrv.db import unit_of_work

    return unit_of_work(load_settings())


# ---------------------------------------------------------------------------- handlers


def _stock_type_arg(p: argparse.ArgumentParser, default: str | None) -> None:
    p.add_argument(
        "--stock-type", choices=STOCK_TYPES, default=default,
        help="blank stock type: KTP-EL (chip blanks) or KIA"
        + (f" (default {default})" if default else
           f" (default with --count: {DEFAULT_STOCK_TYPE}; with serials: theirs)"),
    )


def _signatory_args(p: argparse.ArgumentParser) -> None:
    """Who signs the Berita Acara Serah Terima (name and NIP of each side)."""
    g = p.add_argument_group("signatures on the handover certificate (BAST)")
    g.add_argument("--giver-name", default="", help="'Yang menyerahkan': name")
    g.add_argument("--giver-nip", default="", help="'Yang menyerahkan': NIP or identity number")
    g.add_argument("--receiver-name", default="", help="'Yang menerima': name")
    g.add_argument("--receiver-nip", default="", help="'Yang menerima': NIP or identity number")


def _signatory(name: str, nip: str) -> str:
    """A handover signatory as the ledger stores one (``NAME / NIP 1234``; empty: none)."""
    from printsrv.paperwork import NIP_SEPARATOR

    if not name.strip():
        return ""
    return f"{name.strip().upper()}{NIP_SEPARATOR}{nip.strip()}" if nip.strip() else (
        name.strip().upper())


def cmd_receive(args: argparse.Namespace) -> int:
    from printsrv.ledger.blanks import receive_blanks
    from printsrv.ledger.errors import LedgerError

    if not (args.first and args.last):
        raise LedgerError("a carton is received by range: --first SERIAL --last SERIAL")
    with _uow() as session:
        doc = receive_blanks(
            session,
            office_code=args.office,
            first=args.first,
            last=args.last,
            handover_number=args.handover,
            carton=args.carton,
            from_party=args.from_party,
            document_date=args.date,
            note=args.note,
            actor=args.actor,
            stock_type=args.stock_type,
            giver=_signatory(args.giver_name, args.giver_nip),
            receiver=_signatory(args.receiver_name, args.receiver_nip),
        )
        print(
            f"received {doc.count} {args.stock_type} blanks {doc.first_serial}.."
            f"{doc.last_serial} at {args.office} (handover {doc.number})"
        )
    return 0


def cmd_transfer(args: argparse.Namespace) -> int:
    from printsrv.ledger.blanks import transfer_blanks

    serials = _serials(args)
    with _uow() as session:
        doc = transfer_blanks(
            session,
            from_office_code=args.from_office,
            to_office_code=args.to_office,
            serials=serials,
            handover_number=args.handover,
            document_date=args.date,
            note=args.note,
            actor=args.actor,
            giver=_signatory(args.giver_name, args.giver_nip),
            receiver=_signatory(args.receiver_name, args.receiver_nip),
        )
        print(
            f"transferred {doc.count} blanks {args.from_office} → {args.to_office} "
            f"(handover {doc.number})"
        )
    return 0


def cmd_station(args: argparse.Namespace) -> int:
    from printsrv.ledger.blanks import get_or_create_station

    with _uow() as session:
        station = get_or_create_station(
            session,
            args.name,
            office_code=args.office,
            cups_queue=args.cups_queue,
            reader=args.reader,
            profile=args.profile,
            actor=args.actor,
        )
        print(f"station {station.name} at {args.office} (id {station.id})")
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from printsrv.ledger.blanks import load_blanks, station_by_name

    serials = _serials(args, required=False)
    with _uow() as session:
        station = station_by_name(session, args.station)
        blanks = load_blanks(
            session, station, actor=args.actor, count=args.count, serials=serials or None,
            stock_type=args.stock_type,
        )
        print(
            f"loaded {len(blanks)} {blanks[0].stock_type} blanks into {station.name}: "
            f"{blanks[0].serial}..{blanks[-1].serial}"
        )
    return 0


def cmd_unload(args: argparse.Namespace) -> int:
    from printsrv.ledger.blanks import station_by_name, unload_blanks

    serials = _serials(args, required=False)
    with _uow() as session:
        station = station_by_name(session, args.station)
        blanks = unload_blanks(session, station, actor=args.actor, serials=serials or None)
        print(f"unloaded {len(blanks)} blanks from {station.name}")
    return 0


def cmd_spoil(args: argparse.Namespace) -> int:
    from printsrv.ledger.blanks import blanks_by_serials, spoil_blank
    from printsrv.ledger.models import SpoilCause

    serials = _serials(args)
    with _uow() as session:
        for blank in blanks_by_serials(session, serials):
            spoil_blank(
                session,
                blank,
                cause=SpoilCause(args.cause),
                record_id=args.record_id,
                note=args.note,
                actor=args.actor,
            )
        print(f"spoiled {len(serials)} blanks ({args.cause})")
    return 0


def cmd_destroy(args: argparse.Namespace) -> int:
    from printsrv.ledger.blanks import destroy_blanks
    from printsrv.ledger.errors import LedgerError

    if len(args.officer) != 2:
        raise LedgerError(
            "a destruction record is signed by exactly two officers (--officer twice)"
        )
    serials = _serials(args, required=False)
    with _uow() as session:
        doc = destroy_blanks(
            session,
            office_code=args.office,
            number=args.number,
            officers=(args.officer[0], args.officer[1]),
            witness=args.witness,
            witness_role=args.witness_role,
            place=args.place,
            serials=serials or None,
            document_date=args.date,
            actor=args.actor,
        )
        print(f"destroyed {doc.count} spoiled blanks at {args.office} (record {doc.number})")
    return 0


def cmd_adjust(args: argparse.Namespace) -> int:
    from printsrv.ledger.adjustments import request_adjustment
    from printsrv.ledger.blanks import station_by_name
    from printsrv.ledger.models import AdjustmentKind, BlankState

    serials = _serials(args)
    with _uow() as session:
        station = station_by_name(session, args.station) if args.station else None
        adj = request_adjustment(
            session,
            office_code=args.office,
            kind=AdjustmentKind(args.kind),
            serials=serials,
            reason=args.reason,
            requested_by=args.actor,
            target_state=BlankState(args.to_state) if args.to_state else None,
            station=station,
        )
        print(
            f"adjustment ADJ-{adj.id} requested ({adj.kind.value}, {len(adj.serials)} blanks); "
            "a different person must approve it"
        )
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    from printsrv.ledger.adjustments import approve_adjustment, reject_adjustment
    from printsrv.ledger.errors import LedgerError

    text = args.adjustment.upper().removeprefix("ADJ-")
    if not text.isdigit():
        raise LedgerError(f"{args.adjustment!r} is not an adjustment id")
    with _uow() as session:
        if args.reject:
            adj = reject_adjustment(session, int(text), rejected_by=args.actor, note=args.note)
        else:
            adj = approve_adjustment(session, int(text), approved_by=args.actor, note=args.note)
        print(f"adjustment ADJ-{adj.id} {adj.status.value} by {args.actor}")
    return 0


def cmd_ribbon_receive(args: argparse.Namespace) -> int:
    from printsrv.ledger.models import ConsumableKind
    from printsrv.ledger.ribbons import receive_consumable

    with _uow() as session:
        roll = receive_consumable(
            session,
            kind=ConsumableKind(args.kind),
            office_code=args.office,
            serial=args.serial,
            type_=args.type_,
            capacity=args.capacity,
            reference=args.reference,
            actor=args.actor,
        )
        print(f"received {args.kind} {roll.serial} ({roll.type}, {roll.capacity_panels} panels)")
    return 0


def cmd_ribbon_load(args: argparse.Namespace) -> int:
    from printsrv.ledger.blanks import station_by_name
    from printsrv.ledger.models import ConsumableKind
    from printsrv.ledger.ribbons import load_consumable

    with _uow() as session:
        station = station_by_name(session, args.station)
        load_consumable(
            session, station, kind=ConsumableKind(args.kind), serial=args.serial, actor=args.actor
        )
        print(f"loaded {args.kind} {args.serial} into {station.name}")
    return 0


def cmd_ribbon_transfer(args: argparse.Namespace) -> int:
    from printsrv.ledger.models import ConsumableKind
    from printsrv.ledger.ribbons import transfer_consumable

    with _uow() as session:
        transfer_consumable(
            session, kind=ConsumableKind(args.kind), serial=args.serial,
            to_office_code=args.to_office, reference=args.handover, actor=args.actor,
        )  # fmt: skip
        print(f"transferred {args.kind} {args.serial} to {args.to_office}")
    return 0


def cmd_ribbon_replace(args: argparse.Namespace) -> int:
    from printsrv.ledger.blanks import station_by_name
    from printsrv.ledger.models import ConsumableKind
    from printsrv.ledger.ribbons import replace_consumable

    with _uow() as session:
        station = station_by_name(session, args.station)
        replace_consumable(
            session,
            station,
            kind=ConsumableKind(args.kind),
            serial=args.serial,
            printer_level=args.printer_level,
            actor=args.actor,
        )
        print(f"{station.name} now has {args.kind} {args.serial}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from printsrv.db import session_factory
    from printsrv.ledger.check import check_ledger

    with session_factory(load_settings())() as session:
        result = check_ledger(session)
    if args.json:
        print(json.dumps(result.as_dict(), indent=1, ensure_ascii=False))
    else:
        for problem in result.problems:
            print(f"PROBLEM {problem}", file=sys.stderr)
        for bal in result.offices:
            print(
                f"{bal.office} {bal.stock_type}: received {bal.received} + in "
                f"{bal.transferred_in} - issued {bal.issued} - spoiled {bal.spoiled} - out "
                f"{bal.transferred_out} = on hand {bal.on_hand} {'ok' if bal.ok else 'MISMATCH'}"
            )
        verdict = "BALANCED" if result.ok else f"NOT BALANCED ({len(result.problems)} problems)"
        print(f"ledger {verdict}: {result.blanks} blanks, {result.movements} movements")
    return 0 if result.ok else 1


def cmd_report(args: argparse.Namespace) -> int:
    from printsrv.db import session_factory
    from printsrv.ledger.reports import (
        Signatories,
        render_csv,
        render_pdf,
        report_filename,
        signatories_from_settings,
        stock_report,
    )

    settings = load_settings()
    with session_factory(settings)() as session:
        report = stock_report(session, args.office, args.month)
    if args.format == "json":
        data: bytes = (json.dumps(report, indent=1, ensure_ascii=False) + "\n").encode()
    elif args.format == "csv":
        data = render_csv(report, args.lang).encode()
    else:
        given = Signatories(args.prepared_name, args.prepared_nip, args.head_name,
                            args.head_nip, args.head_title)
        people = given.merged(signatories_from_settings(settings.report_signatories, args.office))
        data = render_pdf(report, args.lang, people)
    if args.out:
        args.out.write_bytes(data)
        print(f"wrote {args.out}", file=sys.stderr)
    elif args.format == "pdf":  # PDF bytes are no use on a terminal: a file named for them
        out = Path(report_filename(report, "pdf"))
        out.write_bytes(data)
        print(out.resolve())
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from sqlalchemy import func, select

    from printsrv.db import session_factory
    from printsrv.ledger.blanks import blank_by_serial, office_by_code
    from printsrv.ledger.errors import LedgerError
    from printsrv.ledger.models import Blank, BlankMovement, Consumable, Station
    from printsrv.models import Office

    with session_factory(load_settings())() as session:
        if args.serial:
            blank = blank_by_serial(session, args.serial)
            codes = dict(session.execute(select(Office.id, Office.code)).all())
            moves = session.scalars(
                select(BlankMovement)
                .where(BlankMovement.blank_id == blank.id)
                .order_by(BlankMovement.id)
            ).all()
            out: dict[str, Any] = {
                "serial": blank.serial,
                "state": blank.state.value,
                "office": codes[blank.office_id],
                "station": blank.station.name if blank.station else None,
                "chip_uid": blank.chip_uid,
                "record_id": blank.record_id,
                "spoil_cause": blank.spoil_cause.value if blank.spoil_cause else None,
                "carton": blank.carton,
                "journal": [
                    {
                        "at": _local(m.at, codes[m.office_id]),
                        "kind": m.kind.value,
                        "from": m.from_state.value if m.from_state else None,
                        "to": m.to_state.value,
                        "office": codes[m.office_id],
                        "to_office": codes.get(m.to_office_id) if m.to_office_id else None,
                        "record_id": m.record_id,
                        "cause": m.cause.value if m.cause else None,
                        "reference": m.reference,
                        "actor": m.actor,
                    }
                    for m in moves
                ],
            }
        elif args.office:
            office = office_by_code(session, args.office)
            by_state = dict(
                session.execute(
                    select(Blank.state, func.count())
                    .where(Blank.office_id == office.id)
                    .group_by(Blank.state)
                ).all()
            )
            stations = session.scalars(select(Station).where(Station.office_id == office.id))
            rolls = session.scalars(
                select(Consumable)
                .where(Consumable.office_id == office.id)
                .order_by(Consumable.kind, Consumable.serial)
            )
            out = {
                "office": office.code,
                "name": office.name,
                "blanks": {s.value: n for s, n in by_state.items()},
                "stations": [
                    {"name": s.name, "state": s.state.value, "cups_queue": s.cups_queue}
                    for s in stations
                ],
                "rolls": [
                    {
                        "kind": r.kind.value,
                        "serial": r.serial,
                        "state": r.state.value,
                        "station": r.station.name if r.station else None,
                        "panels_used": r.panels_used,
                        "capacity_panels": r.capacity_panels,
                        "printer_level": r.printer_level,
                    }
                    for r in rolls
                ],
            }
        else:
            raise LedgerError("give a serial or --office CODE")
    if args.json:
        print(json.dumps(out, indent=1, ensure_ascii=False))
    else:
        from printsrv.terminal import record

        print(record(out))
    return 0
