-- Seven days and their numbers.
SELECT range AS day_number, 'day ' || range AS label
FROM range(7)
