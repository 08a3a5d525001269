"""Package layout that pyproject.toml cannot express: book/results/ is installed as seqtag._results.

Chapters read stored results with `seqtag.results.load(name)`; this mapping ships the JSON files with
the package (wheel, git install in Colab, editable install), so no chapter opens a path relative to
itself. Everything else lives in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["seqtag", "seqtag.*"]), "seqtag._results"],
    package_dir={"seqtag._results": "book/results"},
    package_data={"seqtag._results": ["*.json"]},
)
