# Step 2, co-addition (seed 3.2.2): SWarp stacks of each planned stack list,
# resampled with the SCAMP heads onto the stack's 1 deg^2 quantum.


rule coadd_stack:
    """SWarp: Lanczos3, TAN, J2000, weighted co-addition at zero point 30."""
    input:
        plan=ancient(release_file("_plan.csv")),  # re-evaluate inputs after a replan
        accepted=stem_file("_accepted.list"),
        accept=stem_file("_scamp_accept.xml"),
        exposures=get_stack_exposures,
        weights=get_stack_weights,
        scamp=str(RELEASES / "{release}" / "{stem}" / "scamp"),
        registry=ancient(REGISTRY_EXPORT),
        config=ASTROMATIC / "stack.swarp",
    output:
        image=stem_file(".fits"),
        weight=stem_file("_weight.fits"),
        xml=stem_file("_swarp.xml"),
        cmd=stem_file("_swarp.cmd"),
    params:
        bin=tool("swarp"),
        grid=get_stack_grid,
        overrides=config["coaddition"]["swarp_overrides"],
        software=software("coadd_stack", tools=["swarp", "scamp"]),
    threads: 2
    log:
        "logs/releases/{release}/{stem}/coadd_stack.log",
    benchmark:
        "benchmarks/releases/{release}/{stem}/coadd_stack.tsv"
    conda:
        "../envs/astromatic.yaml"
    script:
        "../scripts/coadd_stack.py"


rule make_chi2:
    """The tile's chi-squared image from all its filters' stacks (even a single one)."""
    input:
        unpack(get_tile_stacks),
        plan=ancient(release_file("_plan.csv")),
        config=ASTROMATIC / "chi2.swarp",
    output:
        image=chi2_file("_chi2.fits"),
        weight=chi2_file("_chi2_weight.fits"),
        xml=chi2_file("_chi2.xml"),
        cmd=chi2_file("_chi2.cmd"),
    params:
        bin=tool("swarp"),
        grid=get_tile_grid,
        overrides=config["coaddition"]["swarp_overrides"],
        software=software("make_chi2", tools=["swarp"]),
    log:
        "logs/releases/{release}/{chi2}/make_chi2.log",
    benchmark:
        "benchmarks/releases/{release}/{chi2}/make_chi2.tsv"
    conda:
        "../envs/astromatic.yaml"
    script:
        "../scripts/make_chi2.py"


rule extract_stack_catalogue:
    """SExtractor dual-image mode: detection on the chi2 image, measurement on the stack."""
    input:
        unpack(get_stem_chi2),
        plan=ancient(release_file("_plan.csv")),
        image=stem_file(".fits"),
        weight=stem_file("_weight.fits"),
        config=ASTROMATIC / "release.sex",
        param=ASTROMATIC / "release.param",
        conv=ASTROMATIC / "gauss_3.0_5x5.conv",
        nnw=ASTROMATIC / "default.nnw",
    output:
        ldac=stem_file("_ldac.fits"),
        xml=stem_file("_sex.xml"),
        cmd=stem_file("_sex.cmd"),
    params:
        bin=tool("sextractor"),
        options=get_catalogue_options,
        software=software("extract_stack_catalogue", tools=["sextractor"]),
    log:
        "logs/releases/{release}/{stem}/extract_stack_catalogue.log",
    benchmark:
        "benchmarks/releases/{release}/{stem}/extract_stack_catalogue.tsv"
    conda:
        "../envs/astromatic.yaml"
    script:
        "../scripts/extract_stack_catalogue.py"


rule make_dust_map:
    """E(B-V) from the offline SFD map, resampled onto the stack grid."""
    input:
        image=stem_file(".fits"),
    output:
        dust=stem_file("_dust.fits"),
    params:
        source=config["catalogues"]["dust_map"],
        software=software("make_dust_map"),
    log:
        "logs/releases/{release}/{stem}/make_dust_map.log",
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/make_dust_map.py"


rule write_provenance:
    """The stack's command file (``_cmd.txt``) and processing XML (inputs, checksums,
    software versions, configuration files, non-default options)."""
    input:
        unpack(get_provenance_inputs),
        plan=ancient(release_file("_plan.csv")),
        refcat=config["inputs"]["refcat"],
    output:
        cmd=stem_file("_cmd.txt"),
        xml=stem_file(".xml"),
    params:
        software=software("write_provenance", tools=["scamp", "swarp", "sextractor", "psfex", "weightwatcher"]),
        options=get_provenance_options,
    log:
        "logs/releases/{release}/{stem}/write_provenance.log",
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/write_provenance.py"


rule summarise_product:
    """The SPICA summary (seed 4.4, 6.2): the stack, its stacked and astrometric files, SCAMP statistics."""
    input:
        plan=ancient(release_file("_plan.csv")),
        image=stem_file(".fits"),
        stack=stem_file("_stack.list"),
        astrometric=stem_file("_astrom.list"),
        accept=stem_file("_scamp_accept.xml"),
        scamp_xml=stem_file("_scamp.xml"),
        registry=ancient(REGISTRY_EXPORT),
    output:
        summary=stem_file("_spica.xml"),
    params:
        name=get_stack_name,
        software=software("summarise_product"),
    log:
        "logs/releases/{release}/{stem}/summarise_product.log",
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/summarise_product.py"


rule make_stack_thumbnails:
    """PNG thumbnails of a stack: image, weight map, background (seed 3.2.2)."""
    input:
        image=stem_file(".fits"),
        weight=stem_file("_weight.fits"),
    output:
        **{key: stem_file(f"_{key}.png") for key in ("m", "m_med", "wmm", "wmm_med", "bkg_m")},
    params:
        software=software("make_thumbnails"),
    log:
        "logs/releases/{release}/{stem}/make_stack_thumbnails.log",
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/make_thumbnails.py"


rule make_chi2_thumbnail:
    """PNG of a tile's chi-squared image."""
    input:
        image=chi2_file("_chi2.fits"),
        weight=chi2_file("_chi2_weight.fits"),
    output:
        m=chi2_file("_chi2.png"),
    params:
        software=software("make_thumbnails"),
    log:
        "logs/releases/{release}/{chi2}/make_chi2_thumbnail.log",
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/make_thumbnails.py"
