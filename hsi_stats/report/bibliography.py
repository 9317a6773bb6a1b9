"""The works the methods text can cite, each stated once: as BibTeX, as a reference line and as "(Author, year)".

A :class:`Reference` holds the bibliographic fields of one work. :func:`bibtex` writes ``references.bib`` for the
works a methods text cites; the HTML and PDF reports show :meth:`Reference.text`, and the plain paragraphs cite
with :attr:`Reference.citation`, so the three can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["REFERENCES", "Reference", "bibtex"]


@dataclass(frozen=True)
class Reference:
    """One citable work.

    Attributes
    ----------
    key : str
        The BibTeX key (``[@key]`` in Markdown, ``\\cite{key}`` in LaTeX).
    kind : {"article", "book", "incollection", "inproceedings"}
    authors : tuple of str
        "Last, First Middle" each, in order.
    year : int
    title : str
    fields : mapping of str to str
        The other BibTeX fields (``journal``, ``volume``, ``number``, ``pages``, ``doi``, ``publisher``, ...);
        pages with an ASCII hyphen-minus (written as an en dash in BibTeX).
    """

    key: str
    kind: str
    authors: tuple[str, ...]
    year: int
    title: str
    fields: Mapping[str, str] = field(default_factory=dict)

    @property
    def citation(self) -> str:
        """How plain text cites the work: ``Efron, 1987``, ``Benjamini and Hochberg, 1995``, ``Winkler et al., 2014``.

        Examples
        --------
        >>> REFERENCES["winkler2014"].citation, REFERENCES["bh1995"].citation
        ('Winkler et al., 2014', 'Benjamini and Hochberg, 1995')
        """
        last = [author.split(",")[0] for author in self.authors]
        names = (last[0] if len(last) == 1 else f"{last[0]} and {last[1]}" if len(last) == 2 else
                 f"{last[0]} et al.")
        return f"{names}, {self.year}"

    def text(self) -> str:
        """The full reference as one line of plain text (the reports' reference list).

        Examples
        --------
        >>> REFERENCES["holm1979"].text()
        'Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scandinavian Journal of \
Statistics 6(2), 65-70.'
        """
        authors = [_initials(author) for author in self.authors]
        who = authors[0] if len(authors) == 1 else ", ".join(authors[:-1]) + " and " + authors[-1]
        f = self.fields
        if self.kind == "book":
            edition = f"{f['edition']} edition. " if "edition" in f else ""
            where = edition + (f"{f['publisher']}, {f['address']}." if "address" in f else f"{f['publisher']}.")
        elif self.kind == "inproceedings":
            where = f"In {f['booktitle']}, {f['pages']}."
        elif self.kind == "incollection":
            where = (f"In {_initials(f['editor'])} (ed.), {f['booktitle']}, {f['pages']}. {f['publisher']}, "
                     f"{f['address']}.")
        else:
            where = f"{f['journal']} {f['volume']}" + (f"({f['number']})" if "number" in f else "")
            where += f", {f['pages']}." if "pages" in f else f", Article {f['eid']}." if "eid" in f else "."
        doi = f" doi:{f['doi']}" if "doi" in f else ""
        return f"{who} ({self.year}). {self.title}. {where}{doi}"

    def to_bibtex(self) -> str:
        """The BibTeX entry, with the title's capitals protected by braces and pages as an en dash range."""
        entries = {"author": " and ".join(self.authors), "title": _protect(self.title), "year": str(self.year)}
        for name, value in self.fields.items():
            entries[name] = value.replace("-", "--") if name == "pages" else value
        width = max(map(len, entries))
        body = ",\n".join(f"  {name.ljust(width)} = {{{value}}}" for name, value in entries.items())
        return f"@{self.kind}{{{self.key},\n{body}\n}}\n"


def _initials(author: str) -> str:
    """``"Efron, Bradley"`` -> ``"Efron, B."``; ``"Smith, Stephen M."`` -> ``"Smith, S. M."``."""
    last, _, first = author.partition(", ")
    return f"{last}, " + " ".join(f"{part[0]}." for part in first.replace("-", " ").split())


def _protect(title: str) -> str:
    """Braces around words with a capital after the first word, so that bibliography styles keep their case."""
    words = title.split(" ")
    return " ".join([words[0], *(f"{{{w}}}" if any(c.isupper() for c in w) else w for w in words[1:])])


def _article(key: str, authors: tuple[str, ...], year: int, title: str, journal: str, volume: str,
             number: str | None = None, pages: str | None = None, doi: str | None = None,
             eid: str | None = None) -> Reference:
    given = {"journal": journal, "volume": volume, "number": number, "pages": pages, "eid": eid, "doi": doi}
    return Reference(key, "article", authors, year, title, {k: v for k, v in given.items() if v is not None})


_WORKS = (
    _article("efron1987", ("Efron, Bradley",), 1987, "Better bootstrap confidence intervals",
             "Journal of the American Statistical Association", "82", "397", "171-185",
             "10.1080/01621459.1987.10478410"),
    _article("hesterberg2015", ("Hesterberg, Tim C.",), 2015,
             "What teachers should know about the bootstrap: resampling in the undergraduate statistics "
             "curriculum", "The American Statistician", "69", "4", "371-386", "10.1080/00031305.2015.1089789"),
    _article("field2007", ("Field, Christopher A.", "Welsh, Alan H."), 2007, "Bootstrapping clustered data",
             "Journal of the Royal Statistical Society: Series B (Statistical Methodology)", "69", "3", "369-390",
             "10.1111/j.1467-9868.2007.00593.x"),
    _article("winkler2014", ("Winkler, Anderson M.", "Ridgway, Gerard R.", "Webster, Matthew A.",
                             "Smith, Stephen M.", "Nichols, Thomas E."), 2014,
             "Permutation inference for the general linear model", "NeuroImage", "92", None, "381-397",
             "10.1016/j.neuroimage.2014.01.060"),
    _article("phipson2010", ("Phipson, Belinda", "Smyth, Gordon K."), 2010,
             "Permutation p-values should never be zero: calculating exact p-values when permutations are "
             "randomly drawn", "Statistical Applications in Genetics and Molecular Biology", "9", "1",
             doi="10.2202/1544-6115.1585", eid="39"),
    Reference("westfall1993", "book", ("Westfall, Peter H.", "Young, S. Stanley"), 1993,
              "Resampling-Based Multiple Testing: Examples and Methods for p-Value Adjustment",
              {"publisher": "Wiley", "address": "New York"}),
    _article("holm1979", ("Holm, Sture",), 1979, "A simple sequentially rejective multiple test procedure",
             "Scandinavian Journal of Statistics", "6", "2", "65-70"),
    _article("bh1995", ("Benjamini, Yoav", "Hochberg, Yosef"), 1995,
             "Controlling the false discovery rate: a practical and powerful approach to multiple testing",
             "Journal of the Royal Statistical Society: Series B (Methodological)", "57", "1", "289-300",
             "10.1111/j.2517-6161.1995.tb02031.x"),
    _article("by2001", ("Benjamini, Yoav", "Yekutieli, Daniel"), 2001,
             "The control of the false discovery rate in multiple testing under dependency",
             "The Annals of Statistics", "29", "4", "1165-1188", "10.1214/aos/1013699998"),
    _article("fisher1921", ("Fisher, Ronald A.",), 1921,
             "On the 'probable error' of a coefficient of correlation deduced from a small sample", "Metron", "1",
             "4", "3-32"),
    _article("shannon1948", ("Shannon, Claude E.",), 1948, "A mathematical theory of communication",
             "The Bell System Technical Journal", "27", "3", "379-423", "10.1002/j.1538-7305.1948.tb01338.x"),
    Reference("mcfadden1974", "incollection", ("McFadden, Daniel",), 1974,
              "Conditional logit analysis of qualitative choice behavior",
              {"booktitle": "Frontiers in Econometrics", "editor": "Zarembka, Paul", "pages": "105-142",
               "publisher": "Academic Press", "address": "New York"}),
    _article("mullahy2015", ("Mullahy, John",), 2015,
             "Multivariate fractional regression estimation of econometric share models",
             "Journal of Econometric Methods", "4", "1", "71-100", "10.1515/jem-2012-0006"),
    _article("baker1994", ("Baker, Stuart G.",), 1994, "The multinomial-Poisson transformation",
             "Journal of the Royal Statistical Society: Series D (The Statistician)", "43", "4", "495-504",
             "10.2307/2348134"),
    _article("firth1993", ("Firth, David",), 1993, "Bias reduction of maximum likelihood estimates", "Biometrika",
             "80", "1", "27-38", "10.1093/biomet/80.1.27"),
    _article("heinze2010", ("Heinze, Georg", "Puhr, Rainer"), 2010,
             "Bias-reduced and separation-proof conditional logistic regression with small or sparse data sets",
             "Statistics in Medicine", "29", "7-8", "770-777", "10.1002/sim.3794"),
    _article("mackinnon2023", ("MacKinnon, James G.", "Nielsen, Morten Ørregaard", "Webb, Matthew D."), 2023,
             "Cluster-robust inference: a guide to empirical practice", "Journal of Econometrics", "232", "2",
             "272-299", "10.1016/j.jeconom.2022.04.001"),
    Reference("michel2019", "inproceedings", ("Michel, Paul", "Levy, Omer", "Neubig, Graham"), 2019,
              "Are sixteen heads really better than one?",
              {"booktitle": "Advances in Neural Information Processing Systems 32", "pages": "14014-14024"}),
    Reference("voita2019", "inproceedings", ("Voita, Elena", "Talbot, David", "Moiseev, Fedor", "Sennrich, Rico",
                                             "Titov, Ivan"), 2019,
              "Analyzing multi-head self-attention: specialized heads do the heavy lifting, the rest can be pruned",
              {"booktitle": "Proceedings of the 57th Annual Meeting of the Association for Computational Linguistics",
               "pages": "5797-5808", "doi": "10.18653/v1/P19-1580"}),
    Reference("jain2019", "inproceedings", ("Jain, Sarthak", "Wallace, Byron C."), 2019, "Attention is not explanation",
              {"booktitle": "Proceedings of the 2019 Conference of the North American Chapter of the Association for "
                            "Computational Linguistics: Human Language Technologies", "pages": "3543-3556",
               "doi": "10.18653/v1/N19-1357"}),
    Reference("kutner2005", "book", ("Kutner, Michael H.", "Nachtsheim, Christopher J.", "Neter, John", "Li, William"),
              2005, "Applied Linear Statistical Models",
              {"edition": "Fifth", "publisher": "McGraw-Hill/Irwin", "address": "Boston"}),
    _article("wilson1927", ("Wilson, Edwin B.",), 1927,
             "Probable inference, the law of succession, and statistical inference",
             "Journal of the American Statistical Association", "22", "158", "209-212",
             "10.1080/01621459.1927.10502953"),
    Reference("kish1965", "book", ("Kish, Leslie",), 1965, "Survey Sampling",
              {"publisher": "Wiley", "address": "New York"}),
    _article("newcombe1998", ("Newcombe, Robert G.",), 1998,
             "Interval estimation for the difference between independent proportions: comparison of eleven methods",
             "Statistics in Medicine", "17", "8", "873-890",
             "10.1002/(SICI)1097-0258(19980430)17:8<873::AID-SIM779>3.0.CO;2-I"),
)

#: Every work a methods text may cite, by BibTeX key.
REFERENCES: Mapping[str, Reference] = MappingProxyType({work.key: work for work in _WORKS})


def bibtex(keys: Iterable[str]) -> str:
    """``references.bib``: the BibTeX entries of the works ``keys``, in that order.

    Raises
    ------
    KeyError
        For a key that is not in :data:`REFERENCES` (the message lists the known keys).

    Examples
    --------
    >>> print(bibtex(["holm1979"]))
    @article{holm1979,
      author  = {Holm, Sture},
      title   = {A simple sequentially rejective multiple test procedure},
      year    = {1979},
      journal = {Scandinavian Journal of Statistics},
      volume  = {6},
      number  = {2},
      pages   = {65--70}
    }
    <BLANKLINE>
    """
    keys = list(keys)
    unknown = [key for key in keys if key not in REFERENCES]
    if unknown:
        raise KeyError(f"no reference for the citation keys {unknown}; the known keys are {sorted(REFERENCES)}.")
    return "\n".join(REFERENCES[key].to_bibtex() for key in keys)
