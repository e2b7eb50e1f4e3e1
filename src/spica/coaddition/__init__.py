"""Step 2 co-addition around SWarp: grid, stacks, chi2, header cards, dust maps, catalogues."""
