# Step 1, the data-ingestion context (seed 2.1 and 3.1): QualityFITS-in.
# Per exposure, two jobs: the integrity check (before the inventory checkpoint; it
# also writes the .ahead SCAMP reads, from the headers it reads anyway),
# then reduce_exposure: defect masks -> WeightWatcher weight/flag maps ->
# SExtractor catalogue -> PSFEx model -> QA plots, diagnostics, XML, one job
# (issue 10: each Snakemake job costs planning time and a cluster submission,
# 7,000 exposures; the QA uses the CCD pixels the defect step read). Group
# "step1": a cluster profile may bundle several exposures' jobs in one submission.

_SEX = config["step1"]["sextractor"]
_PSFEX = config["step1"]["psfex"]
_WEIGHTS = config["step1"]["weights"]


rule check_exposure:
    """Integrity and content check; locate the Elixir flat and mask; write the
    ``.ahead`` (the primary keywords SCAMP reads beside the catalogue, with the
    observing metadata's photometric flag) while the headers are read anyway."""
    input:
        exposure=get_raw_exposure,
    output:
        check=step1("check"),
        # empty for a quarantined exposure (it has no catalogue for SCAMP to read)
        ahead=step1("ahead"),
    params:
        calibrations=config["inputs"]["calibrations"],
        fitsverify=FITSVERIFY,
        limits=INTEGRITY_LIMITS,
        # a param, not the metadata file as an input: a new metadata file reruns the
        # check of the exposures whose flag it changes, not of all of them
        photometric=get_photometric_flag,
        software=software("check_exposure", tools=["fitsverify"]),
    log:
        run_log("exposure", "check_exposure"),
    benchmark:
        run_benchmark("exposure", "check_exposure")
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
        run_log("step1", "make_inventory"),
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
        run_log("calibrations", "{calib}"),
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/stage_calibration.py"


rule reduce_exposure:
    """Defect masks (cosmic rays, trails, saturation, NaN) -> WeightWatcher weight/flag
    maps -> SExtractor catalogue -> PSFEx model -> QualityFITS-in (QA plots, per-CCD
    diagnostics, XML summary, provisional grade): one job (spica.step1.reduce); the
    defect map is private to it (written beside the products, deleted at the end)."""
    input:
        exposure=get_raw_exposure,
        flat=get_flat,
        mask=get_mask,
    output:
        weight=step1("weight"),
        flag=step1("flag"),
        ww_xml=step1("ww_xml"),
        ldac=step1("ldac"),
        sex_xml=step1("sex_xml"),
        minibkg=step1("minibkg"),
        psf=step1("psf"),
        psfex_xml=step1("psfex_xml"),
        # the 21 QA plots (spica.paths.QA_PLOTS) are written beside the XML, which is
        # written last: one product, declared by the XML (spica.paths.STEP1_DECLARED)
        diag=step1("diag"),
        qa_xml=step1("qa_xml"),
    params:
        # the configuration files, with their checksums (an edit reruns, see common.smk)
        configs=astromatic_configs("step1_ww", "step1_sex", "step1_param", "conv", "nnw", "step1_psfex"),
        binaries={
            "weightwatcher": tool("weightwatcher"),
            "sextractor": tool("sextractor"),
            "psfex": tool("psfex"),
        },
        cosmics=_WEIGHTS["cosmics"],
        trails=_WEIGHTS["trails"],
        flat_range=_WEIGHTS["flat_range"],
        sextractor_options=sextractor.step1_options(_SEX, pixel_scale=config["survey"]["pixel_scale"]),
        psfex_options=psfex.step1_options(_PSFEX),
        limits=config["step1"]["grading"],
        software=software("reduce_exposure", tools=["weightwatcher", "sextractor", "psfex"]),
    # one: the tools run on one thread (NTHREADS 1), and the defect step on two (CCDs side
    # by side) cost 0.9-1.0 s more CPU of its 5-6 s per full-size exposure (the threads
    # hand the GIL to each other: 14,000 context switches instead of 100) for 1.5 s less
    # wall time of ~75 s; one thread per exposure, two exposures side by side
    threads: 1
    group:
        "step1"
    resources:
        mem_mb=3000,
    log:
        log=run_log("exposure", "reduce_exposure"),
        steps=run_steps("exposure", "reduce_exposure"),
    benchmark:
        run_benchmark("exposure", "reduce_exposure")
    conda:
        "../envs/astromatic.yaml"
    script:
        # a script, not shell: WeightWatcher's inputs are checked first (it silently
        # writes wrong maps from mismatched MEFs) and single-CCD outputs repaired
        "../scripts/reduce_exposure.py"
