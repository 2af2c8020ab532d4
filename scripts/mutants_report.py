#!/usr/bin/env python3
"""Combine the stages of scripts/mutants-staged into one result (issue 15).

usage: scripts/mutants_report.py OUT_DIR [SETTLED_TSV]

OUT_DIR holds one folder per cargo-mutants run: lib* (stage 1, possibly split across machines),
module-* (stage 2) and all* (stage 3), each with mutants.out/outcomes.json. SETTLED_TSV (name,
verdict, evidence: mutants settled by hand, see scripts/mutants-staged) is optional. A
mutant's verdict is the one from the last stage that tested it, then SETTLED_TSV's; stage 1 must
have tested every mutant. Prints a Markdown summary: counts per module and overall, and the
survivors.
"""
import collections
import json
import pathlib
import sys

STAGE_ORDER = ("lib", "module", "all", "hand")
VERDICT = {"CaughtMutant": "caught", "MissedMutant": "missed", "Timeout": "timeout",
           "Unviable": "unviable"}
HAND_VERDICTS = ("caught", "equivalent", "missed")


def stage_rank(folder):
    for rank, prefix in enumerate(STAGE_ORDER):
        if folder.name.startswith(prefix):
            return rank
    return None


def outcomes(folder):
    data = json.loads((folder / "mutants.out" / "outcomes.json").read_text())
    for outcome in data["outcomes"]:
        mutant = outcome["scenario"].get("Mutant") if isinstance(outcome["scenario"], dict) else None
        if mutant is not None:  # the baseline scenario, when one ran, is not a mutant
            yield mutant["name"], mutant["file"], VERDICT[outcome["summary"]]


def module_of(path):
    parts = path.split("/")
    return "/".join(parts[:2]) + "/" if len(parts) > 2 else path


def main(out, settled=None):
    folders = sorted((f for f in pathlib.Path(out).iterdir()
                      if f.is_dir() and stage_rank(f) is not None
                      and (f / "mutants.out" / "outcomes.json").exists()), key=stage_rank)
    verdict, stage_of, files = {}, {}, {}
    for folder in folders:
        rank = stage_rank(folder)
        for name, path, result in outcomes(folder):
            if rank > 0 and name not in verdict:
                sys.exit(f"{folder.name} tested {name!r}, which no stage-1 run did")
            verdict[name], stage_of[name], files[name] = result, STAGE_ORDER[rank], path
    evidence = {}
    hand = pathlib.Path(settled) if settled else None
    for line in hand.read_text().splitlines() if hand and hand.exists() else []:
        if not line.strip() or line.startswith("#"):
            continue
        name, result, why = line.split("\t")
        if name not in verdict:
            sys.exit(f"{hand} names {name!r}, which no stage-1 run tested")
        if result not in HAND_VERDICTS:
            sys.exit(f"{hand}: verdict {result!r} is not one of {HAND_VERDICTS}")
        verdict[name], stage_of[name], evidence[name] = result, "hand", why
    table = collections.defaultdict(collections.Counter)
    for name, result in verdict.items():
        table[module_of(files[name])][result] += 1
        table["**all**"][result] += 1
    # Equivalent mutants are viable and not caught: they count against the score, as
    # cargo-mutants would count them; the survivor list says why each cannot be caught.
    print("| module | mutants | caught | timed out | unviable | missed (of which equivalent) | score |")
    print("|---|---|---|---|---|---|---|")
    for module in sorted(table, key=lambda m: (m == "**all**", m)):
        c = table[module]
        missed = c["missed"] + c["equivalent"]
        viable = c["caught"] + c["timeout"] + missed
        score = f"{100 * (c['caught'] + c['timeout']) / viable:.1f}%" if viable else "-"
        print(f"| {module} | {sum(c.values())} | {c['caught']} | {c['timeout']} | {c['unviable']} "
              f"| {missed} ({c['equivalent']}) | {score} |")
    caught_at = collections.Counter(stage_of[n] for n, r in verdict.items() if r in ("caught", "timeout"))
    print("\ncaught at stage: " + ", ".join(f"{s} {caught_at[s]}" for s in STAGE_ORDER))
    missed = sorted(n for n, r in verdict.items() if r in ("missed", "equivalent"))
    unfinished = [n for n in missed if stage_of[n] not in ("all", "hand")]
    print(f"\nsurvivors ({len(missed)}):")
    for name in missed:
        note = {"all": "", "hand": f" ({verdict[name]}: {evidence.get(name)})"}.get(
            stage_of[name], f" (only through stage {stage_of[name]})")
        print(f"- `{name}`{note}")
    settled = sorted(n for n, s in stage_of.items() if s == "hand" and verdict[n] == "caught")
    print(f"\nsettled by hand as caught ({len(settled)}):")
    for name in settled:
        print(f"- `{name}`: {evidence[name]}")
    if unfinished:
        print(f"\n{len(unfinished)} survivors have not been through the whole suite yet.")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(*sys.argv[1:])
