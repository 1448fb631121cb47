//! Plain-text tables for the CLI and the inventory's text form: columns padded to their widest
//! cell, two spaces apart, trailing spaces trimmed.

/// The rows as one string, a line per row.
pub fn table(rows: Vec<Vec<String>>) -> String {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The lines of [`table`], for other renderers.
pub fn table_lines(rows: &[Vec<String>]) -> Vec<String> {
    table(rows.to_vec()).lines().map(str::to_owned).collect()
}
