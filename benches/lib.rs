//! Fixture builders shared by the criterion benchmarks in `benches/`.

use std::fs;
use std::io::Write;
use std::path::Path;

/// Creates `files` small files spread over `dirs` directories under `root`,
/// each 1 to 16 KiB of deterministic non-zero bytes.
pub fn build_small_tree(root: &Path, files: usize, dirs: usize) -> std::io::Result<()> {
    let mut content = vec![0u8; 16 << 10];
    for (index, byte) in content.iter_mut().enumerate() {
        *byte = (index % 251) as u8 + 1;
    }
    for index in 0..files {
        let dir = root.join(format!("d{:03}", index % dirs));
        fs::create_dir_all(&dir)?;
        let size = 1024 + (index * 7919) % (15 << 10);
        fs::write(dir.join(format!("f{index:06}")), &content[..size])?;
    }
    Ok(())
}

/// Creates one file of `size` bytes of non-zero data at `path`.
pub fn build_large_file(path: &Path, size: usize) -> std::io::Result<()> {
    let mut file = fs::File::create(path)?;
    let block: Vec<u8> = (0..1 << 20).map(|i| (i % 253) as u8 + 1).collect();
    let mut written = 0;
    while written < size {
        let chunk = block.len().min(size - written);
        file.write_all(&block[..chunk])?;
        written += chunk;
    }
    Ok(())
}
