"""Use case 2, the data: seeded synthetic French oncology reports with their ground-truth JSON.

The study's records are nominative and private; this module writes stand-ins the way such reports are
written (the lecture's CA and CC examples: ``Prélevé le 01/12/2016``, ``CR édité le :``,
``[REDACTED]`` identifiers, history sections, molecular results, earlier cancers, treatments, dates
in a dozen formats) and, for each report, the JSON the extraction should return under the keys of
:mod:`neuraltext.clinical.schema`.

* A **patient** has one primary cancer (site, histology, grade, TNM, stage, metastatic sites), a true
  diagnosis date and 0-2 earlier cancers, clinically coherent: the histology, grade, treatments and
  board decisions are drawn from the table :data:`TUMOUR_TYPES` (site -> histologies -> grades, and the
  site's treatments), which :func:`tumour_table` lays out for printing; their **reports** (2-6: CA, CC, RC) each state part of it.
  As in real records, a consultation sometimes gives another diagnosis date than the truth (the
  surgery date, or the month only): the per-report ground truth is what *that report* says, and the
  patient-level truth (:attr:`Patient.date_diagnostic`) is what the patient table must reconcile.
* Three **styles** per type: ``A`` (the lecture's layout), ``B`` (another hospital's headings) and
  ``C`` (telegraphic notes: ``Cs du 24.08.18``, ``TNM=T2N1M0``). Rules are developed on
  :data:`DEV_STYLES` only; :data:`HELD_OUT_STYLES` measure what a template-bound method loses.
* **Lengths**: most reports are a few hundred tokens; about 1% (``p_long``) carry a long follow-up
  log that takes them past a 3,072-token context, the study's first-pass limit.
* :func:`read_report_folder` and :func:`read_report_csv` load a user's own reports.

Seeded: the same ``seed`` gives the same reports, byte for byte.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from dataclasses import dataclass, field
from pathlib import Path

from neuraltext.data.dates import DAY_FORMATS, format_date
from neuraltext.clinical.schema import DOCUMENT_TYPES, MET_SITES

__all__ = ["Report", "Patient", "STYLES", "DEV_STYLES", "HELD_OUT_STYLES", "TumourType", "TUMOUR_TYPES",
           "tumour_table", "decisions", "synthetic_patients",
           "synthetic_reports", "ReportFileError", "read_report_folder", "read_report_csv"]

STYLES = ("A", "B", "C")
DEV_STYLES = ("A", "B")
HELD_OUT_STYLES = ("C",)

_ALL_GRADES = ("bien différencié", "moyennement différencié", "peu différencié")


@dataclass(frozen=True)
class TumourType:
    """One primary site: how reports name it, its histologies with the grades each may have, the
    systemic treatments given for it, and whether it is hormone-sensitive (a hormonotherapy decision)."""

    de: str
    adjective: str
    histologies: dict
    treatments: tuple
    hormone_sensitive: bool = False


#: The clinical table the generator draws from: site -> tumour type. A report never pairs a histology
#: with a grade it cannot have ("de haut grade" is never "bien différencié"), nor a cancer with
#: another cancer's drugs (no FOLFIRINOX for an ovarian or prostate cancer, no tamoxifen for a lung).
#: The usual first lines of the French guidelines, simplified: a stand-in, not medical advice.
TUMOUR_TYPES: dict[str, TumourType] = {
    "poumon": TumourType("du poumon", "pulmonaire", {"adénocarcinome": _ALL_GRADES, "carcinome épidermoïde": _ALL_GRADES},
                         ("carboplatine-pémétrexed", "Taxol-Avastin", "pembrolizumab", "nivolumab", "osimertinib",
                          "docétaxel")),
    "sein gauche": TumourType("du sein gauche", "mammaire", {"carcinome canalaire infiltrant": _ALL_GRADES,
                                                              "carcinome lobulaire": _ALL_GRADES[:2]},
                              ("tamoxifène", "létrozole", "capécitabine", "docétaxel", "paclitaxel", "trastuzumab"), True),
    "sein droit": TumourType("du sein droit", "mammaire", {"carcinome canalaire infiltrant": _ALL_GRADES,
                                                            "carcinome lobulaire": _ALL_GRADES[:2]},
                             ("tamoxifène", "létrozole", "capécitabine", "docétaxel", "paclitaxel", "trastuzumab"), True),
    "exo col": TumourType("de l'exo col", "du col utérin", {"carcinome épidermoïde": _ALL_GRADES},
                          ("cisplatine", "carboplatine-paclitaxel", "pembrolizumab")),
    "côlon sigmoïde": TumourType("du côlon sigmoïde", "colique", {"adénocarcinome lieberkühnien": _ALL_GRADES},
                                 ("FOLFOX", "FOLFIRI", "capécitabine", "bévacizumab")),
    "rectum": TumourType("du rectum", "rectal", {"adénocarcinome lieberkühnien": _ALL_GRADES},
                         ("FOLFOX", "FOLFIRI", "capécitabine", "bévacizumab")),
    "prostate": TumourType("de la prostate", "prostatique", {"adénocarcinome acinaire": _ALL_GRADES},
                           ("docétaxel", "enzalutamide", "abiratérone", "leuproréline"), True),
    "vessie": TumourType("de la vessie", "vésical", {"carcinome urothélial": _ALL_GRADES[1:]},
                         ("gemcitabine-cisplatine", "pembrolizumab", "avélumab")),
    "pancréas": TumourType("du pancréas", "pancréatique", {"adénocarcinome canalaire": _ALL_GRADES},
                           ("FOLFIRINOX", "gemcitabine-nab-paclitaxel")),
    "ovaire droit": TumourType("de l'ovaire droit", "ovarien", {"carcinome séreux de haut grade": ("peu différencié",)},
                               ("carboplatine-paclitaxel", "olaparib", "bévacizumab")),
    "rein gauche": TumourType("du rein gauche", "rénal", {"carcinome à cellules claires": _ALL_GRADES},
                              ("sunitinib", "nivolumab", "cabozantinib")),
    "estomac": TumourType("de l'estomac", "gastrique", {"adénocarcinome": _ALL_GRADES},
                          ("FLOT", "FOLFOX", "capécitabine")),
}


def tumour_table() -> list[dict]:
    """:data:`TUMOUR_TYPES` as rows ``site, histology, grades, treatments`` (``pd.DataFrame`` prints it)."""
    return [{"site": site, "histology": histology, "grades": ", ".join(grades), "treatments": ", ".join(t.treatments)}
            for site, t in TUMOUR_TYPES.items() for histology, grades in t.histologies.items()]


def decisions(site: str, metastatic: bool) -> tuple[str, ...]:
    """The tumour-board decisions drawn for a patient (hormonotherapy only for a hormone-sensitive cancer)."""
    options = ("chimiothérapie", "soins de support", "radiothérapie") if metastatic else \
        ("chirurgie", "chimiothérapie", "radiothérapie", "radio-chimiothérapie", "surveillance")
    return options + (("hormonothérapie",) if TUMOUR_TYPES[site].hormone_sensitive else ())


_BIOPSY_SITES = {  # metastatic biopsy sites and the canonical metastatic site they belong to
    "psoas droit": ("du psoas droit", "os"), "foie": ("du foie", "foie"),
    "ganglion sus-claviculaire gauche": ("d'un ganglion sus-claviculaire gauche", "ganglionnaire"),
    "os iliaque": ("de l'os iliaque", "os"), "plèvre": ("de la plèvre", "plèvre"),
}
_EARLIER = ["carcinome épidermoïde ORL", "carcinome canalaire mammaire", "adénocarcinome prostatique",
            "mélanome cutané", "lymphome hodgkinien", "carcinome papillaire thyroïdien"]
_MET_WORD = {"os": "osseux", "foie": "hépatique", "poumon": "pulmonaire", "cerveau": "cérébral",
             "ganglionnaire": "ganglionnaire", "surrénale": "surrénalien", "plèvre": "pleural",
             "péritoine": "péritonéal"}
_EXAMS = ["scanner TAP", "TEP-scanner", "IRM cérébrale", "scintigraphie osseuse", "échographie abdominale"]
_MOLECULAR = ["EGFR-", "KRAS-", "HER2-", "BRAF -", "ALK-", "PD-L1 50 %", "MSI stable", "BRCA1/2 non muté"]


@dataclass
class Report:
    """One report: its id (``CR``), type, style, text and ground truth (``None`` for loaded reports)."""

    id: str
    type: str
    text: str
    truth: dict | None = None
    style: str | None = None
    patient: str | None = None


@dataclass
class Patient:
    id: str
    site: str
    histology: str
    grade: str
    tnm: str
    stage: str
    met_sites: list[str]
    date_diagnostic: dt.date
    earlier: list[tuple[str, int]]
    reports: list[Report] = field(default_factory=list)

    @property
    def site_adjective(self) -> str:
        return TUMOUR_TYPES[self.site].adjective

    @property
    def site_de(self) -> str:
        return TUMOUR_TYPES[self.site].de

    @property
    def cancers(self) -> list[str]:
        return [f"{self.histology} {self.site_adjective}"] + [name for name, _ in self.earlier]


def _date(rng: random.Random, d: dt.date, formats=DAY_FORMATS) -> tuple[str, str]:
    text, iso = format_date(d, rng.choice(list(formats)), rng)
    return text.removeprefix("le ").removeprefix("en "), iso  # the templates bring their own "le"


def _stage(t: str, n: str, m: str) -> str:
    if m == "M1":
        return "IV"
    if n != "N0":
        return "III" if n in ("N2", "N3") else "IIB"
    return {"T1": "IA", "T1a": "IA", "T1b": "IA", "T2": "IB", "T3": "IIA", "T4": "IIIA"}.get(t, "II")


def _patient(i: int, rng: random.Random) -> Patient:
    site = rng.choice(list(TUMOUR_TYPES))
    histology = rng.choice(list(TUMOUR_TYPES[site].histologies))
    t = rng.choice(["T1", "T1b", "T2", "T3", "T4"])
    n = rng.choice(["N0", "N0", "N1", "N2"])
    metastatic = rng.random() < 0.4
    m = "M1" if metastatic else "M0"
    mets = sorted(rng.sample([s for s in MET_SITES if s != "poumon" or site != "poumon"], rng.randint(1, 3))) \
        if metastatic else []
    diag = dt.date(2010, 1, 1) + dt.timedelta(days=rng.randrange(0, 365 * 12))
    earlier = [(name, diag.year - rng.randint(1, 8)) for name in rng.sample(_EARLIER, rng.choice([0, 0, 1, 2]))]
    return Patient(id=f"P{i:05d}", site=site, histology=histology,
                   grade=rng.choice(TUMOUR_TYPES[site].histologies[histology]),
                   tnm=f"{t} {n} {m}", stage=_stage(t, n, m), met_sites=mets, date_diagnostic=diag,
                   earlier=earlier)


def _filler(rng: random.Random, p: Patient, start: dt.date, n: int) -> list[str]:
    """``n`` follow-up lines with distracting dates (exams, treatments), none of them a key's value."""
    lines = []
    day = start
    for _ in range(n):
        day += dt.timedelta(days=rng.randint(10, 60))
        when, _ = _date(rng, day)
        kind = rng.random()
        if kind < 0.4:
            lines.append(f"{rng.choice(_EXAMS).capitalize()} du {when} : {rng.choice(['stabilité', 'réponse partielle', 'discrète progression', 'pas de lésion nouvelle'])}.")
        elif kind < 0.8:
            lines.append(f"Cure n°{rng.randint(1, 12)} de {rng.choice(TUMOUR_TYPES[p.site].treatments)} le {when}, "
                         f"bien tolérée (asthénie grade {rng.randint(1, 2)}).")
        else:
            lines.append(f"Au plan moléculaire ({when}) : {', '.join(rng.sample(_MOLECULAR, 3))}.")
    return lines


def _ca(rng: random.Random, p: Patient, style: str, when: dt.date, long: bool) -> tuple[str, dict]:
    metastatic_biopsy = bool(p.met_sites) and rng.random() < 0.5
    if metastatic_biopsy:
        bsite = rng.choice(list(_BIOPSY_SITES))
        bde = _BIOPSY_SITES[bsite][0]
        diagnostic = f"Métastase d'un {p.histology} {p.grade} {p.site_de}"
    else:
        bsite, bde = p.site, p.site_de
        diagnostic = f"{p.histology.capitalize()} {p.grade} {p.site_de}"
    validated = when + dt.timedelta(days=rng.randint(1, 6))
    edited = validated + dt.timedelta(days=rng.choice([0, 0, 1, 3]))
    c, v, e = (_date(rng, d)[0] for d in (when, validated, edited))
    history = _filler(rng, p, p.date_diagnostic - dt.timedelta(days=120), rng.randint(0, 3) + (120 if long else 0))
    if style == "A":
        text = (f"Prélevé le {c}\nEnregistré le {c}\n\nExamen n° [REDACTED]\n\nCR édité le : {e}\n"
                f"Validé le : {v}\n\nPROTOCOLE MOSCATO\nETUDE MORPHOLOGIQUE\n\nRENSEIGNEMENTS\n\n"
                f"N° d'inclusion [REDACTED]\n" + "\n".join(history) +
                f"\n\nLocalisation du prélèvement : Biopsie {bde}\n\nDiagnostic : {diagnostic}\n")
    elif style == "B":
        text = (f"COMPTE RENDU ANATOMO-PATHOLOGIQUE\nPatient : [REDACTED]    IPP : [REDACTED]\n"
                f"Date du prélèvement : {c}\nNature du prélèvement : biopsie {bde}\n\nRenseignements cliniques :\n"
                + "\n".join(history) + f"\n\nMicroscopie : prolifération tumorale d'architecture variable.\n"
                f"CONCLUSION : {diagnostic}.\n\nCompte rendu validé le {v} par le Dr [REDACTED], "
                f"édité le {e}.\n")
    else:
        text = (f"ANAPATH -- réf. [REDACTED]\nPrlvt ............ {c}\nOrgane/site ...... {bsite}\n"
                + "\n".join(history) + f"\n>> {diagnostic}\nSigné électroniquement {v} ; impression {e}\n")
    truth = {"date_creation": when.isoformat(), "date_validation": validated.isoformat(),
             "date_edition": edited.isoformat(), "site_primitif": p.site, "site_biopsie": bsite,
             "type_histologique": p.histology, "grade_histologique": p.grade,
             "diagnostic": diagnostic.lower()}
    return text, truth


def _cc(rng: random.Random, p: Patient, style: str, when: dt.date, long: bool) -> tuple[str, dict]:
    edited = when + dt.timedelta(days=rng.randint(1, 12))
    # Records disagree: a third of consultations give the surgery date or the month only.
    shown, fmts = p.date_diagnostic, DAY_FORMATS
    r = rng.random()
    if r < 0.2:
        shown = p.date_diagnostic + dt.timedelta(days=rng.randint(7, 40))
    elif r < 0.33:
        fmts = ("mois yyyy", "en mois yyyy")
    d_text, d_iso = _date(rng, shown, fmts)
    c, e = _date(rng, when)[0], _date(rng, edited)[0]
    label = f"{p.histology} {p.site_adjective}"
    mets = ", ".join(_MET_WORD[s] for s in p.met_sites)
    history = _filler(rng, p, p.date_diagnostic, rng.randint(1, 4) + (120 if long else 0))
    earlier = "\n".join(f"- {name} ({year})" for name, year in p.earlier) or "- aucun"
    t, n, m = p.tnm.split()
    if style == "A":
        ext = (f"pour un {label} métastatique au niveau {mets}" if p.met_sites
               else f"pour un {label} sans localisation secondaire")
        text = (f"Consultation du {c}\n\nVu(e) en consultation {ext}.\n\nAntécédents\n\n{earlier}\n\n"
                f"Mode de vie\n\nTabagisme sevré en {p.date_diagnostic.year - 10}.\n\nHistoire de la maladie\n\n"
                f"{label.capitalize()} diagnostiqué le {d_text}. Classification {t} {n} {m}, stade {p.stage}.\n"
                + "\n".join(history) + f"\n\nSigné électroniquement le {e} par le Dr [REDACTED]\n")
    elif style == "B":
        ext = (f"Métastases : oui ({mets})" if p.met_sites else "Métastases : non")
        text = (f"COMPTE RENDU DE CONSULTATION D'ONCOLOGIE\nDate de consultation : {c}\nMédecin : [REDACTED]\n\n"
                f"Antécédents oncologiques :\n{earlier}\n\nDiagnostic initial : {label}, date du diagnostic : "
                f"{d_text}\nClassification : p{t} p{n} c{m} - stade {p.stage}\n{ext}\n\nÉvolution :\n"
                + "\n".join(history) + f"\n\nCourrier édité le {e}\n")
    else:
        ext = (" / ".join(f"{_MET_WORD[s]}+" for s in p.met_sites) if p.met_sites else "pas de MT")
        earlier_c = "; ".join(f"{name} {year}" for name, year in p.earlier) or "0"
        text = (f"Cs du {c} -- onco\nATCD K : {earlier_c}\nHDM : {label}, Dg {d_text}\nTNM={t}{n}{m} st.{p.stage}\n"
                f"Extension : {ext}\n" + "\n".join(history) + f"\nFrappé le {e}\n")
    truth = {"TNM": p.tnm, "liste_cancers": sorted(x.lower() for x in p.cancers), "date_consultation": when.isoformat(),
             "date_diagnostic": d_iso, "date_edition": edited.isoformat(),
             "metastases": "présence" if p.met_sites else "absence", "site_metastatique": list(p.met_sites),
             "stade_tumeur": p.stage}
    return text, truth


def _rc(rng: random.Random, p: Patient, style: str, when: dt.date, long: bool) -> tuple[str, dict]:
    decision = rng.choice(decisions(p.site, metastatic=bool(p.met_sites)))
    trial = rng.random() < 0.3
    d = _date(rng, when)[0]
    history = _filler(rng, p, p.date_diagnostic, rng.randint(0, 3) + (120 if long else 0))
    t, n, m = p.tnm.split()
    if style == "A":
        text = (f"RÉUNION DE CONCERTATION PLURIDISCIPLINAIRE\nRCP du {d}\nPatient : [REDACTED]\n\n"
                f"Organe : {p.site}\nHistologie : {p.histology}\nTNM : {t} {n} {m}\n\nHistorique :\n"
                + "\n".join(history) + f"\n\nProposition thérapeutique : {decision}\n"
                f"Essai clinique proposé : {'oui' if trial else 'non'}\n")
    elif style == "B":
        text = (f"Dossier présenté en RCP le {d}.\nPatient(e) suivi(e) pour un {p.histology} {p.site_de} "
                f"classé {t} {n} {m}.\n" + "\n".join(history) + f"\nDécision de la RCP : {decision}.\n"
                + ("Inclusion proposée dans un essai clinique.\n" if trial else "Pas d'essai clinique disponible.\n"))
    else:
        text = (f"RCP {d} -- onco\nDx : {p.histology} / {p.site}\n{t}{n}{m}\n" + "\n".join(history)
                + f"\nAvis : {decision}\nEssai : {'OUI' if trial else 'NON'}\n")
    truth = {"date_rcp": when.isoformat(), "site_primitif": p.site, "type_histologique": p.histology,
             "TNM": p.tnm, "decision": decision, "essai_clinique": "oui" if trial else "non"}
    return text, truth


_WRITERS = {"CA": _ca, "CC": _cc, "RC": _rc}


def synthetic_patients(n: int = 100, seed: int = 0, styles: tuple[str, ...] = STYLES,
                       p_long: float = 0.01) -> list[Patient]:
    """``n`` seeded patients with 2-6 reports each (every report's style drawn from ``styles``)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    bad = [s for s in styles if s not in STYLES]
    if bad or not styles:
        raise ValueError(f"styles must be a non-empty subset of {STYLES}, got {styles!r}")
    if not 0.0 <= p_long <= 1.0:
        raise ValueError(f"p_long must be in [0, 1], got {p_long}")
    rng = random.Random(seed)
    patients = []
    for i in range(n):
        p = _patient(i, rng)
        types = ["CA"] + rng.sample(["CC", "CC", "RC", "CA", "CC"], rng.randint(1, 5))
        when = p.date_diagnostic - dt.timedelta(days=rng.randint(5, 20))
        for k, kind in enumerate(types):
            style = rng.choice(styles)
            text, truth = _WRITERS[kind](rng, p, style, when, rng.random() < p_long)
            rid = f"{p.id}_{kind}_{k:02d}_{when:%Y%m%d}"
            truth = {**truth, "CR": rid, "document_type": kind}
            p.reports.append(Report(id=rid, type=kind, text=text, truth=truth, style=style, patient=p.id))
            when += dt.timedelta(days=rng.randint(15, 120))
        patients.append(p)
    return patients


def synthetic_reports(n_patients: int = 100, seed: int = 0, styles: tuple[str, ...] = STYLES,
                      p_long: float = 0.01) -> list[Report]:
    """The reports of :func:`synthetic_patients`, flattened in patient order."""
    return [r for p in synthetic_patients(n_patients, seed, styles, p_long) for r in p.reports]


# ---------------------------------------------------------------------------------------- loaders
class ReportFileError(ValueError):
    """A user's report file cannot be read: the message names the file, the row and what is wrong."""


def _check_type(kind: str, where: str) -> str:
    if kind not in DOCUMENT_TYPES:
        raise ReportFileError(f"{where}: document type {kind!r} is not one of {DOCUMENT_TYPES}")
    return kind


def read_report_folder(folder: str | Path, pattern: str = "*.txt") -> list[Report]:
    """Every ``pattern`` file of ``folder`` as a report; the id is the file stem, the type the part of
    the stem after the first ``_`` that is a known type (the study's ids: ``..._CA_...``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportFileError(f"{folder}: not a folder")
    reports = []
    for path in sorted(folder.glob(pattern)):
        kind = next((part for part in path.stem.split("_") if part in DOCUMENT_TYPES), None)
        if kind is None:
            raise ReportFileError(f"{path}: no document type in the file name (expected one of "
                                  f"{DOCUMENT_TYPES} between underscores, e.g. 123_CA_2016.txt)")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ReportFileError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
        reports.append(Report(id=path.stem, type=kind, text=text))
    if not reports:
        raise ReportFileError(f"{folder}: no file matches {pattern!r}")
    return reports


def read_report_csv(path: str | Path, id_column: str = "id", type_column: str = "type",
                    text_column: str = "text") -> list[Report]:
    """Reports from a CSV file with id, type and text columns (any order; other columns ignored)."""
    path = Path(path)
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in (id_column, type_column, text_column) if c not in (reader.fieldnames or [])]
        if missing:
            raise ReportFileError(f"{path}: missing column(s) {missing}; found {reader.fieldnames}")
        reports, seen = [], set()
        for row_number, row in enumerate(reader, start=2):  # line 1 is the header
            where = f"{path}, row {row_number}"
            rid, text = (row[id_column] or "").strip(), row[text_column]
            if not rid:
                raise ReportFileError(f"{where}: empty {id_column!r}")
            if rid in seen:
                raise ReportFileError(f"{where}: duplicate id {rid!r}")
            if not text or not text.strip():
                raise ReportFileError(f"{where}: empty {text_column!r} for id {rid!r}")
            seen.add(rid)
            reports.append(Report(id=rid, type=_check_type((row[type_column] or "").strip(), where), text=text))
    return reports
