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
        fitsverify=FITSVERIFY,
        limits=INTEGRITY_LIMITS,
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
    threads: 2  # CCDs analysed side by side (spica.step1.defects.write_defect_map)
    group:
        "step1"
    resources:
        mem_mb=3000,
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
        config=astromatic_file("step1_ww"),
    output:
        weight=step1("weight"),
        flag=step1("flag"),
        xml=step1("ww_xml"),
    params:
        bin=tool("weightwatcher"),
        flat_range=_WEIGHTS["flat_range"],
        software=software("make_weight_map", tools=["weightwatcher"]),
    group:
        "step1"
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
        config=astromatic_file("step1_sex"),
        param=astromatic_file("step1_param"),
        conv=astromatic_file("conv"),
        nnw=astromatic_file("nnw"),
    output:
        ldac=step1("ldac"),
        xml=step1("sex_xml"),
        minibkg=step1("minibkg"),
    params:
        bin=tool("sextractor"),
        options=sextractor.step1_options(_SEX, pixel_scale=config["survey"]["pixel_scale"]),
        software=software("extract_sources", tools=["sextractor"]),
    group:
        "step1"
    log:
        step1_log("extract_sources"),
    benchmark:
        "benchmarks/step1/{expnum}p/extract_sources.tsv"
    conda:
        "../envs/astromatic.yaml"
    script:
        "../scripts/extract_sources.py"


rule model_psf:
    """PSFEx: one PSF model per CCD (FWHM, elongation over the focal plane)."""
    input:
        ldac=step1("ldac"),
        config=astromatic_file("step1_psfex"),
    output:
        psf=step1("psf"),
        xml=step1("psfex_xml"),
    params:
        bin=tool("psfex"),
        psf_dir=get_step1_dir,
        options=psfex.step1_options(_PSFEX),
        software=software("model_psf", tools=["psfex"]),
    group:
        "step1"
    log:
        step1_log("model_psf"),
    benchmark:
        "benchmarks/step1/{expnum}p/model_psf.tsv"
    conda:
        "../envs/astromatic.yaml"
    script:
        "../scripts/model_psf.py"


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
    group:
        "step1"
    log:
        step1_log("assess_quality"),
    benchmark:
        "benchmarks/step1/{expnum}p/assess_quality.tsv"
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/assess_quality.py"
