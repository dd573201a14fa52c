-- reads a silver table that no step writes
SELECT *
FROM silver.clean_customerz
