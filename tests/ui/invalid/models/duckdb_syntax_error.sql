{{ config(materialized='table') }}
SELECT range AS day_number, {{ var('label', "'day'") }} AS label
FORM range(7)
