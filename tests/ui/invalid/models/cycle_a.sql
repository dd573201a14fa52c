SELECT * FROM silver.cycle_b
