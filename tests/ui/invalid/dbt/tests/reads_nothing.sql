-- Reads no table of the pipeline.
SELECT 1 AS one WHERE false
