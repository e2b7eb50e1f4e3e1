# Step 1, the data-ingestion context (seed 2.1 and 3.1): QualityFITS-in.
# Per exposure: integrity check -> defect masks -> WeightWatcher weight/flag
# maps -> SExtractor catalogue -> PSFEx model -> QA plots, diagnostics, XML.

_SEX = config["step1"]["sextractor"]
_PSFEX = config["step1"]["psfex"]
_WEIGHTS = config["step1"]["weights"]


rule check_exposure:
    """Integrity and content check; locate the Elixir flat and mask."""
    input:
        exposure=get_raw_exposure,
    output:
        check=step1("check"),
    params:
        calibrations=config["inputs"]["calibrations"],
        fitsverify=tool("fitsverify") if config["step1"]["integrity"]["run_fitsverify"] and TOOLS.get("fitsverify") else None,
        limits={k: v for k, v in config["step1"]["integrity"].items() if k != "run_fitsverify"},
        software=software("check_exposure", tools=["fitsverify"]),
    log:
        step1_log("check_exposure"),
    benchmark:
        "benchmarks/step1/{expnum}p/check_exposure.tsv"
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/check_exposure.py"


checkpoint make_inventory:
    """Gather the verdicts: accepted exposures and the quarantine list."""
    input:
        checks=get_check_files,
    output:
        inventory=INVENTORY,
        quarantine=QUARANTINE,
    params:
        rejected=INCOMING.rejected,
        software=software("make_inventory"),
    log:
        "logs/step1/make_inventory.log",
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/make_inventory.py"


rule stage_calibration:
    """Uncompressed working copy of an Elixir flat or mask (WeightWatcher reads no .gz/.fz)."""
    input:
        raw=get_raw_calibration,
    output:
        staged=str(CALIBRATIONS / "{calib}"),
    params:
        software=software("stage_calibration"),
    log:
        "logs/calibrations/{calib}.log",
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/stage_calibration.py"


rule mask_defects:
    """Cosmic rays (astroscrappy), satellite trails (acstools), saturation, NaN."""
    input:
        exposure=get_raw_exposure,
        mask=get_mask,
    output:
        defects=temp(step1("defects")),
    params:
        cosmics=_WEIGHTS["cosmics"],
        trails=_WEIGHTS["trails"],
        software=software("mask_defects"),
    log:
        step1_log("mask_defects"),
    benchmark:
        "benchmarks/step1/{expnum}p/mask_defects.tsv"
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/mask_defects.py"


rule make_weight_map:
    """WeightWatcher: weight = flat with flagged pixels at 0; 8-bit flag map."""
    input:
        exposure=get_raw_exposure,
        flat=get_flat,
        mask=get_mask,
        defects=step1("defects"),
        config=ASTROMATIC / "step1.ww",
    output:
        weight=step1("weight"),
        flag=step1("flag"),
        xml=step1("ww_xml"),
    params:
        bin=tool("weightwatcher"),
        flat_range=_WEIGHTS["flat_range"],
        software=software("make_weight_map", tools=["weightwatcher"]),
    log:
        step1_log("make_weight_map"),
    benchmark:
        "benchmarks/step1/{expnum}p/make_weight_map.tsv"
    conda:
        "../envs/astromatic.yaml"
    script:
        # a script, not shell: inputs are checked first (WeightWatcher silently
        # writes wrong maps from mismatched MEFs) and single-CCD outputs repaired
        "../scripts/make_weight_map.py"


rule extract_sources:
    """SExtractor catalogue (FITS-LDAC) with the weight and flag maps."""
    input:
        exposure=get_raw_exposure,
        weight=step1("weight"),
        flag=step1("flag"),
        config=ASTROMATIC / "step1.sex",
        param=ASTROMATIC / "step1.param",
        conv=ASTROMATIC / "gauss_3.0_5x5.conv",
        nnw=ASTROMATIC / "default.nnw",
    output:
        ldac=step1("ldac"),
        xml=step1("sex_xml"),
        minibkg=step1("minibkg"),
    params:
        bin=tool("sextractor"),
        apertures=aperture_pixels(_SEX["phot_apertures_arcsec"]),
        extra=astromatic_overrides(
            {
                "DETECT_THRESH": _SEX["detect_thresh"],
                "ANALYSIS_THRESH": _SEX["detect_thresh"],
                "DETECT_MINAREA": _SEX["detect_minarea"],
                "BACK_SIZE": _SEX["back_size"],
                **_SEX["overrides"],
            }
        ),
        software=software(tools=["sextractor"]),
    log:
        step1_log("extract_sources"),
    benchmark:
        "benchmarks/step1/{expnum}p/extract_sources.tsv"
    conda:
        "../envs/astromatic.yaml"
    shell:
        "{params.bin} {input.exposure} -c {input.config}"
        " -PARAMETERS_NAME {input.param} -FILTER_NAME {input.conv} -STARNNW_NAME {input.nnw}"
        " -WEIGHT_IMAGE {input.weight} -FLAG_IMAGE {input.flag}"
        " -PHOT_APERTURES {params.apertures} {params.extra}"
        " -CATALOG_NAME {output.ldac} -XML_NAME {output.xml}"
        " -CHECKIMAGE_NAME {output.minibkg} > {log} 2>&1"


rule model_psf:
    """PSFEx: one PSF model per CCD (FWHM, elongation over the focal plane)."""
    input:
        ldac=step1("ldac"),
        config=ASTROMATIC / "step1.psfex",
    output:
        psf=step1("psf"),
        xml=step1("psfex_xml"),
    params:
        bin=tool("psfex"),
        psf_dir=get_step1_dir,
        extra=astromatic_overrides({"SAMPLE_MINSN": _PSFEX["min_snr"], **_PSFEX["overrides"]}),
        software=software(tools=["psfex"]),
    log:
        step1_log("model_psf"),
    benchmark:
        "benchmarks/step1/{expnum}p/model_psf.tsv"
    conda:
        "../envs/astromatic.yaml"
    shell:
        "{params.bin} {input.ldac} -c {input.config} {params.extra}"
        " -PSF_DIR {params.psf_dir} -XML_NAME {output.xml} > {log} 2>&1"


rule assess_quality:
    """QualityFITS-in: QA plots, per-CCD diagnostics, XML summary, provisional grade."""
    input:
        exposure=get_raw_exposure,
        weight=step1("weight"),
        flag=step1("flag"),
        ldac=step1("ldac"),
        sex_xml=step1("sex_xml"),
        minibkg=step1("minibkg"),
        psf=step1("psf"),
        psfex_xml=step1("psfex_xml"),
    output:
        diag=step1("diag"),
        qa_xml=step1("qa_xml"),
        **{key: step1(key) for key in paths.QA_PLOTS},
    params:
        limits=config["step1"]["grading"],
        pixel_scale=config["survey"]["pixel_scale"],
        software=software("assess_quality"),
    log:
        step1_log("assess_quality"),
    benchmark:
        "benchmarks/step1/{expnum}p/assess_quality.tsv"
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/assess_quality.py"
