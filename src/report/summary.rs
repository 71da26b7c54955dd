//! `summary.md` and `summary.html`: the page a person reads first, rendered from one [`Page`].
//! The HTML is self-contained: inline style, charts linked relatively, no script, no network.

use std::fmt::Write as _;
use std::path::Path;

use super::page::{Block, Page};
use super::{palette, write_error};
use crate::error::Result;
use crate::rank::Severity;

pub fn write_md(path: &Path, page: &Page) -> Result<()> {
    std::fs::write(path, markdown(page)).map_err(|e| write_error(path, e))
}

pub fn write_html(path: &Path, page: &Page) -> Result<()> {
    std::fs::write(path, html(page)).map_err(|e| write_error(path, e))
}

pub fn markdown(page: &Page) -> String {
    let mut s = format!("# {}\n\n{}\n", page.title, page.subtitle);
    for sec in &page.sections {
        let _ = writeln!(s, "\n## {}\n", sec.title);
        for b in &sec.blocks {
            match b {
                Block::Text(t) => {
                    let _ = writeln!(s, "{}\n", md(t));
                }
                Block::Heading(h, _) => {
                    let _ = writeln!(s, "### {}\n", md(h));
                }
                Block::Facts(f) => {
                    for (k, v) in f {
                        let _ = writeln!(s, "- **{}**: {}", md(k), md(v));
                    }
                    s.push('\n');
                }
                Block::List(items) => {
                    for i in items {
                        let _ = writeln!(s, "- {}", md(i));
                    }
                    s.push('\n');
                }
                Block::Table { head, rows } => {
                    let _ = writeln!(s, "| {} |", head.join(" | "));
                    let _ = writeln!(s, "|{}", "---|".repeat(head.len()));
                    for r in rows {
                        let cells: Vec<String> = r.iter().map(|c| md(c)).collect();
                        let _ = writeln!(s, "| {} |", cells.join(" | "));
                    }
                    s.push('\n');
                }
                Block::Images(imgs) => {
                    for (title, path) in imgs {
                        let _ = writeln!(s, "- [{}]({})", md(title), path);
                    }
                    s.push('\n');
                }
            }
        }
    }
    s
}

/// Markdown-safe text: table pipes, line breaks and link/emphasis characters are escaped.
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '|' | '*' | '[' | ']' | '<' | '>' | '`' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(ch),
        }
    }
    out
}

/// HTML-escaped text.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1250px;margin:2em auto;padding:0 1em;color:#222}\
h1{margin-bottom:0}.sub{color:#666}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}\
h3{background:#fbe9e7;padding:.4em .6em;border-left:6px solid #c62828}\
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}dl{display:grid;grid-template-columns:10em 1fr;gap:.3em 1em}dt{font-weight:bold}dd{margin:0}\
figure{margin:1em 0}img{max-width:100%;border:1px solid #ddd}figcaption{color:#555;font-size:.9em}";

pub fn html(page: &Page) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}{}</style></head><body>\n<h1>{}</h1><p class=\"sub\">{}</p>\n",
        esc(&page.title),
        palette::severity_css(),
        esc(&page.title),
        esc(&page.subtitle)
    );
    for sec in &page.sections {
        let _ = writeln!(s, "<h2>{}</h2>", esc(&sec.title));
        for b in &sec.blocks {
            match b {
                Block::Text(t) => {
                    let _ = writeln!(s, "<p>{}</p>", esc(t));
                }
                Block::Heading(h, severity) => match severity {
                    Some(sev) => {
                        let _ = writeln!(s, "<h3 class=\"sev-{}\">{}</h3>", sev.name(), esc(h));
                    }
                    None => {
                        let _ = writeln!(s, "<h3>{}</h3>", esc(h));
                    }
                },
                Block::Facts(f) => {
                    s.push_str("<dl>");
                    for (k, v) in f {
                        let _ = write!(s, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
                    }
                    s.push_str("</dl>\n");
                }
                Block::List(items) => {
                    s.push_str("<ul>");
                    for i in items {
                        let _ = write!(s, "<li>{}</li>", esc(i));
                    }
                    s.push_str("</ul>\n");
                }
                Block::Table { head, rows } => {
                    s.push_str("<table><tr>");
                    for h in head {
                        let _ = write!(s, "<th>{}</th>", esc(h));
                    }
                    s.push_str("</tr>");
                    // A severity column's cells carry the severity's colour.
                    let sev_col = head.iter().position(|h| h == "severity");
                    for r in rows {
                        s.push_str("<tr>");
                        for (i, c) in r.iter().enumerate() {
                            match Severity::parse(c).filter(|_| Some(i) == sev_col) {
                                Some(sev) => {
                                    let _ = write!(
                                        s,
                                        "<td class=\"sev-{}\">{}</td>",
                                        sev.name(),
                                        esc(c)
                                    );
                                }
                                None => {
                                    let _ = write!(s, "<td>{}</td>", esc(c));
                                }
                            }
                        }
                        s.push_str("</tr>");
                    }
                    s.push_str("</table>\n");
                }
                Block::Images(imgs) => {
                    for (title, path) in imgs {
                        let _ = writeln!(
                            s,
                            "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
                            esc(path),
                            esc(title),
                            esc(title)
                        );
                    }
                }
            }
        }
    }
    s.push_str("</body></html>\n");
    s
}
