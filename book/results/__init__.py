"""This folder is installed as the package `seqtag._results`; read it with `seqtag.results.load(name)`."""
