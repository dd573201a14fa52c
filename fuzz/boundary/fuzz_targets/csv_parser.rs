//! The csv-ingest plugin's parser, natively: any bytes, cut into any chunks,
//! must parse or fail with an error, never panic; and where the whole input
//! parses, the batches must not depend on where the chunks were cut.
#![no_main]

#[allow(dead_code)]
#[path = "../../../plugins/csv-ingest/src/parser.rs"]
mod parser;

fn parse(data: &[u8], chunk: usize, batch_rows: usize) -> Result<Vec<arrow_array::RecordBatch>, String> {
    let config = parser::Config { batch_rows, ..parser::Config::default() };
    let mut parser = parser::Parser::new(config, "fuzz.csv".to_owned());
    let mut batches = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        batches.extend(parser.push(piece).map_err(|e| format!("{e:?}"))?);
    }
    batches.extend(parser.finish().map_err(|e| format!("{e:?}"))?);
    Ok(batches)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&knobs, input)) = data.split_first() else { return };
    let (chunk, batch_rows) = (usize::from(knobs & 0x0f) + 1, usize::from(knobs >> 4) + 1);
    let cut = parse(input, chunk, batch_rows);
    let whole = parse(input, input.len(), batch_rows);
    if let (Ok(cut), Ok(whole)) = (&cut, &whole) {
        assert_eq!(cut, whole, "the batches depend on the chunking");
    }
    assert_eq!(cut.is_ok(), whole.is_ok(), "an error depends on the chunking: {cut:?} vs {whole:?}");
});
