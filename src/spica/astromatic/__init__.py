"""One home per AstrOmatic tool: option formatting, the run, the output readers.

* :mod:`~spica.astromatic.options`: the one ``-KEY value`` formatter
  (:func:`~spica.astromatic.options.option_arguments`) and configuration-file readers;
* :mod:`~spica.astromatic.votable`: the one reader of the tools' XML reports;
* one module per tool, each with a pure argument builder, a run returning the
  command it ran (:class:`spica.provenance.ToolRun`) and its output readers:
  :mod:`~spica.astromatic.sextractor` (``arguments``, ``run``, ``read_ldac``),
  :mod:`~spica.astromatic.psfex` (``arguments``, ``run``, ``read_psf_models``),
  :mod:`~spica.astromatic.scamp` (``scamp_arguments``, ``run_scamp``, ``parse_scamp_xml``,
  ``read_heads``), :mod:`~spica.astromatic.swarp` (``swarp_arguments``,
  ``chi2_arguments``, ``run``) and :mod:`~spica.astromatic.weightwatcher`
  (``weightwatcher_arguments``, ``run_weightwatcher``, ``read_weightwatcher_xml``).
"""
