"""The repository is self-contained: no doc or docstring points outside it, the citation is complete."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"\.\./shared|DESIGN\.md|seed/paper")
DOI = "10.48550/arXiv.2009.06129"


def _documents() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "BENCHMARKS.md", ROOT / "CITATION.cff"]
    for folder, pattern in (("docs", "*.md"), ("src", "*.py"), ("benchmarks", "*")):
        files += sorted(p for p in (ROOT / folder).rglob(pattern) if p.is_file() and p.suffix in (".md", ".py"))
    return [p for p in files if p.exists()]


def test_no_doc_or_docstring_points_outside_the_repository():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _documents()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


def test_readme_and_docs_links_resolve():
    for document in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", document.read_text()):
            if "://" not in target:
                assert (document.parent / target).exists(), f"{document.name} links to missing {target}"


def test_citation_cff_cites_the_paper_as_the_readme_does():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["type"] == "software"
    (paper,) = citation["references"]
    assert [a["family-names"] for a in paper["authors"]] == ["Cui", "Gong", "Han", "Liu", "Li"]
    assert paper["year"] == 2020 and "Arterial Spin Labeling" in paper["title"]
    assert {"type": "doi", "value": DOI} in [{k: i[k] for k in ("type", "value")} for i in paper["identifiers"]]
    readme = (ROOT / "README.md").read_text()
    assert DOI in readme and paper["title"] in " ".join(readme.replace("\n>", "\n").split()).replace("*", "")


def test_metrics_doc_states_the_constants_the_code_uses():
    from aslsr import metrics

    text = (ROOT / "docs" / "metrics.md").read_text()
    assert f"sigma={metrics.SSIM_SIGMA}" in text and f"{metrics.SSIM_WINDOW}-voxel window" in text
