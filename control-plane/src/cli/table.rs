//! Column-aligned text tables as istioctl prints them (Go's tabwriter:
//! each column as wide as its widest cell, then padding).

/// Spaces between columns.
const PADDING: usize = 3;

/// `header` then `rows`, each cell left-aligned; the last column unpadded.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + PADDING;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

/// A rendered table's lines split back into their cells (no cell holds
/// the padding).
#[cfg(test)]
pub fn cells(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|line| {
            line.split("   ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell_plus_padding() {
        let table = render(
            &["NAME", "CDS"],
            &[vec!["a-long-name.default".into(), "SYNCED".into()]],
        );
        assert_eq!(
            table,
            "NAME                  CDS\na-long-name.default   SYNCED\n"
        );
    }
}
