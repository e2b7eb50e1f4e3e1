"""QualityFITS-out: the quality assessment of every release product (seed 3.2.2, 6.1, 6.2).

"The QualityFITS-out products are the same as QualityFITS-in, except that the
final weight map attached to each stacked image is already produced during
the stacking step and that QualityFITS-out includes meta-data on completeness
limits." For each planned product (stack ``CFHTLS_D_r_..._T0002`` or image
``751042p_V0001``), :func:`assess_product` runs SExtractor on the product with
its own weight map (never the step 1 catalogue; the background map is its
``BACKGROUND`` check image) and PSFEx on that catalogue (the ``_protopsf.fits``
model and its snapshots on a sky grid), measures them as QualityFITS-in
measures a CCD (:mod:`spica.qualityfits_out.measure`), draws the plots and
writes ``_diag.fits``; :func:`spica.qualityfits_out.completeness.measure_completeness`
measures the completeness from simulated stars. One job per product runs them all,
with the w(theta) of its stars and its automatic masks
(:func:`spica.qualityfits_out.product.assess_release_product`, rule
``assess_product_quality``).

``<stem>_diag.fits`` has the layout of step 1's (:mod:`spica.step1.qa.report`:
primary keywords, ``CCD_DIAG`` with the product as its one row, ``FIELD_DIAG``)
plus HDU ``QUALITYFITS_OUT``: one row, columns
:data:`spica.qualityfits_out.figures.FIGURES`.

Modules: :mod:`~spica.qualityfits_out.assess` (the rule's job),
:mod:`~spica.qualityfits_out.measure` (reading and measuring),
:mod:`~spica.qualityfits_out.figures` (the figures, light: no plotting import),
:mod:`~spica.qualityfits_out.plots`, :mod:`~spica.qualityfits_out.completeness`,
:mod:`~spica.qualityfits_out.grading` (the provisional product grade, the team's grade).
"""
__all__: list[str] = []
