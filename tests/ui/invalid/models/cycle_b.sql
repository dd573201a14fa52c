SELECT * FROM silver.cycle_a
