SELECT * FROM bronze.raw_customers
