//! A tiny document model rendered twice: Markdown with relative image links, and a
//! self-contained HTML page with the images embedded as data URIs.

use std::path::{Path, PathBuf};

/// A block of the report.
pub enum Block {
    /// A heading of level 1..=3.
    Heading(u8, String),
    /// A paragraph (Markdown inline syntax allowed: `**bold**`, `` `code` ``).
    Para(String),
    /// A bulleted list.
    List(Vec<String>),
    /// A table: header and rows of cells.
    Table(Vec<String>, Vec<Vec<String>>),
    /// A row of images with captions (paths relative to the report's directory).
    Images(Vec<(String, PathBuf)>),
    /// Preformatted text.
    Code(String),
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Minimal inline Markdown for HTML: `**bold**` and `` `code` ``.
fn inline_html(s: &str) -> String {
    let mut out = String::new();
    let mut bold = false;
    let mut code = false;
    let text = escape_html(s);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '`' => {
                out.push_str(if code { "</code>" } else { "<code>" });
                code = !code;
            }
            '*' if !code && chars.peek() == Some(&'*') => {
                chars.next();
                out.push_str(if bold { "</b>" } else { "<b>" });
                bold = !bold;
            }
            _ => out.push(c),
        }
    }
    out
}

/// Standard base64 (RFC 4648) of `bytes`.
pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Renders Markdown.
pub fn markdown(blocks: &[Block]) -> String {
    let mut s = String::new();
    for b in blocks {
        match b {
            Block::Heading(level, text) => {
                s.push_str(&format!("{} {text}\n\n", "#".repeat(usize::from(*level))));
            }
            Block::Para(text) => s.push_str(&format!("{text}\n\n")),
            Block::List(items) => {
                for i in items {
                    s.push_str(&format!("- {i}\n"));
                }
                s.push('\n');
            }
            Block::Table(header, rows) => {
                s.push_str(&format!("| {} |\n", header.join(" | ")));
                s.push_str(&format!("|{}\n", "---|".repeat(header.len())));
                for r in rows {
                    s.push_str(&format!("| {} |\n", r.join(" | ")));
                }
                s.push('\n');
            }
            Block::Images(images) => {
                for (caption, path) in images {
                    s.push_str(&format!(
                        "![{caption}]({})\n",
                        path.display().to_string().replace(' ', "%20")
                    ));
                }
                s.push('\n');
            }
            Block::Code(text) => s.push_str(&format!("```text\n{text}\n```\n\n")),
        }
    }
    s
}

/// Renders a self-contained HTML page; images are read from `base` and embedded.
pub fn html(title: &str, blocks: &[Block], base: &Path) -> String {
    let mut s = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\n\
         body{{font-family:sans-serif;max-width:1200px;margin:2em auto;line-height:1.4}}\n\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}\n\
         th{{background:#f3f3f3}}td:first-child,th:first-child{{text-align:left}}\n\
         figure{{display:inline-block;margin:4px;vertical-align:top}}figure img{{max-width:560px}}\n\
         figcaption{{font-size:small;color:#444}}pre{{background:#f6f6f6;padding:8px;overflow:auto}}\n\
         </style></head><body>\n",
        escape_html(title)
    );
    for b in blocks {
        match b {
            Block::Heading(level, text) => {
                s.push_str(&format!("<h{level}>{}</h{level}>\n", inline_html(text)));
            }
            Block::Para(text) => s.push_str(&format!("<p>{}</p>\n", inline_html(text))),
            Block::List(items) => {
                s.push_str("<ul>\n");
                for i in items {
                    s.push_str(&format!("<li>{}</li>\n", inline_html(i)));
                }
                s.push_str("</ul>\n");
            }
            Block::Table(header, rows) => {
                s.push_str("<table><tr>");
                for h in header {
                    s.push_str(&format!("<th>{}</th>", inline_html(h)));
                }
                s.push_str("</tr>\n");
                for r in rows {
                    s.push_str("<tr>");
                    for c in r {
                        s.push_str(&format!("<td>{}</td>", inline_html(c)));
                    }
                    s.push_str("</tr>\n");
                }
                s.push_str("</table>\n");
            }
            Block::Images(images) => {
                s.push_str("<div>\n");
                for (caption, path) in images {
                    match std::fs::read(base.join(path)) {
                        Ok(bytes) => s.push_str(&format!(
                            "<figure><img src=\"data:image/png;base64,{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>\n",
                            base64(&bytes),
                            escape_html(caption),
                            escape_html(caption)
                        )),
                        Err(_) => s.push_str(&format!(
                            "<figure><figcaption>{} (missing: {})</figcaption></figure>\n",
                            escape_html(caption),
                            escape_html(&path.display().to_string())
                        )),
                    }
                }
                s.push_str("</div>\n");
            }
            Block::Code(text) => s.push_str(&format!("<pre>{}</pre>\n", escape_html(text))),
        }
    }
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want);
        }
    }

    #[test]
    fn inline_markup_and_escaping() {
        assert_eq!(inline_html("**a** `b<c`"), "<b>a</b> <code>b&lt;c</code>");
        let md = markdown(&[Block::Table(
            vec!["a".into(), "b".into()],
            vec![vec!["1".into(), "2".into()]],
        )]);
        assert!(md.contains("| a | b |\n|---|---|\n| 1 | 2 |"));
    }
}
