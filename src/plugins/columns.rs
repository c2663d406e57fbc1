//! A trajectory file as named columns, whatever its format: CSV text (a header line, then rows) or
//! NumPy's NPZ archive (`numpy.savez(path, trajectory=ids, t=times, y1=…)`: one 1-D array per
//! column, all of one length; `savez_compressed` too). The `data` sampler
//! (`DataSampler` in `plugins/data.rs`) reads either through [`Table`], so both
//! formats pass the same checks and their errors name the place alike: line 7, column 3 (`y2`) in a
//! CSV file, row 5 of array `y2` in an NPZ archive.
//!
//! NPZ arrays may be floats (`f8`, `f4`, `f2` is refused), integers or booleans for numbers, and
//! also unicode or byte strings for the `trajectory` ids; each array 1-D and of the length of the
//! others. Numbers become text with Rust's shortest round-trip formatting, so the values the
//! checks parse back are the file's `f64`s bit for bit.

use std::io::{Cursor, Read, Seek, SeekFrom};

/// The first bytes of a zip archive (an NPZ file is one): a local file header, or the end of the
/// central directory of an empty archive.
const ZIP_MAGIC: [&[u8]; 2] = [b"PK\x03\x04", b"PK\x05\x06"];

/// Whether `bytes` start like a zip archive.
fn is_zip(bytes: &[u8]) -> bool {
    ZIP_MAGIC.iter().any(|m| bytes.starts_with(m))
}
/// The largest array an NPZ file may declare, in elements (against an allocation abort on a
/// corrupt header): 2^31.
const MAX_ELEMENTS: u64 = 1 << 31;

/// Which format a [`Table`] came from (how its places are named).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV text: lines and columns, 1-based.
    Csv,
    /// An NPZ archive: arrays and rows, 0-based like NumPy's indices.
    Npz,
}

/// One data row: its place in the file (`line 7` or `row 5`) and its fields as text.
pub struct Row {
    /// `line N` (CSV) or `row N` (NPZ).
    pub place: String,
    /// The fields, in header order.
    pub fields: Vec<String>,
}

/// A file's columns: the header and the data rows, read lazily (CSV) or from memory (NPZ).
pub struct Table<'a> {
    /// The format, for naming places.
    pub format: Format,
    /// Column names, in file order (NPZ: the archive's order).
    pub header: Vec<String>,
    /// The data rows, each an error message when it cannot be read.
    pub rows: Box<dyn Iterator<Item = Result<Row, String>> + 'a>,
}

impl<'a> Table<'a> {
    /// The table of a file's bytes: an NPZ archive when they start like a zip file, CSV text otherwise.
    pub fn read(bytes: &'a [u8]) -> Result<Self, String> {
        if is_zip(bytes) { npz(bytes) } else { csv_table(bytes) }
    }

    /// Where column `c` is named: `line 1, column 3` or `array `y2``.
    pub fn column_place(&self, c: usize) -> String {
        match self.format {
            Format::Csv => format!("line 1, column {}", c + 1),
            Format::Npz => format!("array `{}`", self.header[c]),
        }
    }

    /// Where the header is: `line 1` or `the archive's arrays`.
    pub fn header_place(&self) -> &'static str {
        match self.format {
            Format::Csv => "line 1",
            Format::Npz => "the archive's arrays",
        }
    }

    /// Where field `c` of `row` is: `line 7, column 3 (`y2`)` or `row 5 of array `y2``.
    pub fn cell_place(&self, row: &Row, c: usize) -> String {
        match self.format {
            Format::Csv => format!("{}, column {} (`{}`)", row.place, c + 1, self.header[c]),
            Format::Npz => format!("{} of array `{}`", row.place, self.header[c]),
        }
    }
}

/// The number of data rows of an NPZ archive (the length of its first array, read from its header
/// alone), `None` when `file` is no NPZ archive or it cannot be read: the memory estimate's count.
/// Reads the first bytes only when it is not an archive, and leaves `file` where it found it.
pub fn npz_rows<R: Read + Seek>(file: &mut R) -> Option<usize> {
    let start = file.stream_position().ok()?;
    let mut magic = [0u8; 4];
    let zip = file.read_exact(&mut magic).is_ok() && is_zip(&magic);
    file.seek(SeekFrom::Start(start)).ok()?;
    if !zip {
        return None;
    }
    let mut archive = zip::ZipArchive::new(&mut *file).ok()?;
    let member = archive.by_index(0).ok()?;
    let header = npyz::NpyHeader::from_reader(member).ok()?;
    usize::try_from(*header.shape().first()?).ok()
}

/// CSV text: the header line, then records (fields trimmed; rows of another length are the caller's
/// to refuse, with their line).
fn csv_table(bytes: &[u8]) -> Result<Table<'_>, String> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(true).trim(csv::Trim::All).from_reader(bytes);
    let header =
        rdr.headers().map_err(|e| format!("cannot read the header: {e}"))?.iter().map(str::to_string).collect();
    let rows = rdr.into_records().map(move |r| {
        let r = r.map_err(|e| e.to_string())?;
        // A record after a CRLF line end starts at the `\n` the reader has not consumed yet, with the
        // line count of the line before: count its own line.
        let line = r.position().map_or(0, |p| p.line() + u64::from(bytes.get(p.byte() as usize) == Some(&b'\n')));
        Ok(Row { place: format!("line {line}"), fields: r.iter().map(str::to_string).collect() })
    });
    Ok(Table { format: Format::Csv, header, rows: Box::new(rows) })
}

/// An NPZ archive: every member `NAME.npy` a 1-D array, all of one length.
fn npz(bytes: &[u8]) -> Result<Table<'static>, String> {
    let mut zip =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| format!("not a readable NPZ (zip) archive: {e}"))?;
    let mut header = Vec::new();
    let mut columns: Vec<Vec<String>> = Vec::new();
    for i in 0..zip.len() {
        let mut member = zip.by_index(i).map_err(|e| format!("archive member {i}: {e}"))?;
        let name = member.name().map_err(|e| format!("archive member {i}: an unreadable name: {e}"))?.to_string();
        let Some(array) = name.strip_suffix(".npy") else {
            return Err(format!("archive member `{name}` is not a `.npy` array; an NPZ data file holds only arrays"));
        };
        let mut buf = Vec::new();
        member.read_to_end(&mut buf).map_err(|e| format!("array `{array}`: cannot read it: {e}"))?;
        columns.push(npy_column(array, &buf)?);
        header.push(array.to_string());
    }
    if header.is_empty() {
        return Err("the archive holds no arrays".into());
    }
    let n = columns[0].len();
    if let Some(c) = columns.iter().position(|c| c.len() != n) {
        return Err(format!(
            "array `{}` has {} elements and `{}` has {n}: every array is one column, all of one length",
            header[c],
            columns[c].len(),
            header[0]
        ));
    }
    let rows = (0..n)
        .map(move |r| Ok(Row { place: format!("row {r}"), fields: columns.iter().map(|c| c[r].clone()).collect() }));
    Ok(Table { format: Format::Npz, header, rows: Box::new(rows) })
}

/// One `.npy` array of the archive as text fields (see the module docs for the dtypes read).
fn npy_column(name: &str, bytes: &[u8]) -> Result<Vec<String>, String> {
    use npyz::TypeChar;
    let bad = |why: String| format!("array `{name}`: {why}");
    let npy = npyz::NpyFile::new(bytes).map_err(|e| bad(format!("not a readable .npy array: {e}")))?;
    let shape = npy.shape().to_vec();
    let len = match shape.as_slice() {
        [n] => *n,
        _ => return Err(bad(format!("shape {shape:?}; each column must be a 1-D array"))),
    };
    if len > MAX_ELEMENTS {
        return Err(bad(format!("{len} elements, more than the {MAX_ELEMENTS} a data file may hold")));
    }
    let npyz::DType::Plain(ts) = npy.dtype() else {
        return Err(bad("a structured or sub-array dtype; each column must be a plain 1-D array".into()));
    };
    let read = |e: std::io::Error| bad(format!("cannot read its values: {e}"));
    let text = |v: Vec<f64>| v.into_iter().map(|x| format!("{x:?}")).collect::<Vec<_>>();
    fn ints<T: ToString>(v: Vec<T>) -> Vec<String> {
        v.iter().map(T::to_string).collect()
    }
    Ok(match (ts.type_char(), ts.size_field()) {
        (TypeChar::Float, 8) => text(npy.into_vec::<f64>().map_err(read)?),
        (TypeChar::Float, 4) => text(npy.into_vec::<f32>().map_err(read)?.into_iter().map(f64::from).collect()),
        (TypeChar::Int, 1) => ints(npy.into_vec::<i8>().map_err(read)?),
        (TypeChar::Int, 2) => ints(npy.into_vec::<i16>().map_err(read)?),
        (TypeChar::Int, 4) => ints(npy.into_vec::<i32>().map_err(read)?),
        (TypeChar::Int, 8) => ints(npy.into_vec::<i64>().map_err(read)?),
        (TypeChar::Uint, 1) => ints(npy.into_vec::<u8>().map_err(read)?),
        (TypeChar::Uint, 2) => ints(npy.into_vec::<u16>().map_err(read)?),
        (TypeChar::Uint, 4) => ints(npy.into_vec::<u32>().map_err(read)?),
        (TypeChar::Uint, 8) => ints(npy.into_vec::<u64>().map_err(read)?),
        (TypeChar::Bool, _) => npy.into_vec::<bool>().map_err(read)?.iter().map(|b| u8::from(*b).to_string()).collect(),
        (TypeChar::UnicodeStr | TypeChar::ByteStr, _) => npy.into_vec::<String>().map_err(read)?,
        _ => {
            return Err(bad(format!(
                "dtype `{ts}`; allowed: float64 or float32, integers, booleans, or strings (for `trajectory`)"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use npyz::WriterBuilder;

    /// A `.npy` array's bytes, written by npyz as NumPy would.
    fn npy<T: npyz::Serialize + npyz::AutoSerialize + Clone>(v: &[T]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = npyz::WriteOptions::<T>::new()
            .default_dtype()
            .shape(&[v.len() as u64])
            .writer(&mut out)
            .begin_nd()
            .unwrap();
        w.extend(v.iter().cloned()).unwrap();
        w.finish().unwrap();
        out
    }

    /// An NPZ archive of named members, stored (`savez`) or deflated (`savez_compressed`).
    fn archive(members: &[(&str, Vec<u8>)], deflate: bool) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let method = if deflate { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        for (name, bytes) in members {
            zip.start_file(*name, opts).unwrap();
            std::io::Write::write_all(&mut zip, bytes).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    fn rows(t: Table) -> Vec<Vec<String>> {
        t.rows.map(|r| r.unwrap().fields).collect()
    }

    /// Arrays of every accepted dtype become the same text a CSV file would hold, f64 bit for bit.
    #[test]
    fn npz_arrays_read_as_columns() {
        let third = 1.0f64 / 3.0;
        for deflate in [false, true] {
            let bytes = archive(
                &[
                    ("trajectory.npy", npy(&[7i64, 7, 8])),
                    ("t.npy", npy(&[0.0f64, third, 1e-300])),
                    ("y1.npy", npy(&[1.5f32, 2.0, -0.25])),
                    ("y2.npy", npy(&[1u8, 0, 255])),
                ],
                deflate,
            );
            let t = Table::read(&bytes).unwrap();
            assert_eq!(
                (t.format, t.header.clone()),
                (Format::Npz, vec!["trajectory".into(), "t".into(), "y1".into(), "y2".into()])
            );
            let r = rows(t);
            assert_eq!(r[1], ["7", &format!("{third:?}"), "2.0", "0"]);
            assert_eq!(r[1][1].parse::<f64>().unwrap().to_bits(), third.to_bits());
            assert_eq!(r[2], ["8", "1e-300", "-0.25", "255"]);
        }
    }

    /// A bad archive names the array and what is allowed; CSV text is still read as CSV.
    #[test]
    fn bad_npz_files_are_named() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                archive(&[("t.npy", npy(&[0.0f64, 1.0])), ("y1.npy", npy(&[1.0f64]))], false),
                "array `y1` has 1 elements and `t` has 2",
            ),
            (archive(&[("notes.txt", b"hello".to_vec())], false), "`notes.txt` is not a `.npy` array"),
            (archive(&[("t.npy", b"\x93NUMPY garbage".to_vec())], false), "array `t`: not a readable .npy array"),
            (archive(&[], false), "no arrays"),
            (b"PK\x03\x04 truncated".to_vec(), "not a readable NPZ (zip) archive"),
        ];
        for (bytes, want) in cases {
            let e = Table::read(&bytes).err().unwrap_or_else(|| panic!("{want}: no error"));
            assert!(e.contains(want), "{want}: {e}");
        }
        let t = Table::read(b"trajectory,t,y1\na,0,1\n").unwrap();
        assert_eq!(t.format, Format::Csv);
        assert_eq!(rows(t), [["a", "0", "1"]]);
        // Lines are counted alike with LF and CRLF line ends (Python's csv module writes CRLF).
        for text in ["trajectory,t\na,0\na,1\n", "trajectory,t\r\na,0\r\na,1\r\n"] {
            let places: Vec<String> = Table::read(text.as_bytes()).unwrap().rows.map(|r| r.unwrap().place).collect();
            assert_eq!(places, ["line 2", "line 3"], "{text:?}");
        }
    }
}
