//! Scenarios are plain Kubernetes YAML: one file or a directory of `*.yaml` /
//! `*.yml` files (read in name order), multi-document, `kind: List` flattened.
//! Any manifest set in that format runs; nothing lab-specific is required.

use anyhow::{anyhow, Context};
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Every object of the scenario, in file order.
pub fn load(path: &Path) -> anyhow::Result<Vec<Value>> {
    let files = files(path)?;
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f)
            .with_context(|| format!("cannot read scenario file {}", f.display()))?;
        out.extend(parse(&text, &f.display().to_string())?);
    }
    Ok(out)
}

fn files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("scenario {} does not exist", path.display()))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot list scenario directory {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    v.sort();
    if v.is_empty() {
        return Err(anyhow!(
            "scenario directory {} holds no .yaml or .yml file",
            path.display()
        ));
    }
    Ok(v)
}

/// Parse multi-document YAML; `origin` names the source in errors.
pub fn parse(text: &str, origin: &str) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let y = serde_yaml::Value::deserialize(doc)
            .with_context(|| format!("{origin}: document {} is not valid YAML", i + 1))?;
        if y.is_null() {
            continue;
        }
        let v: Value = serde_json::to_value(y)
            .with_context(|| format!("{origin}: document {} cannot be read as JSON", i + 1))?;
        push_object(v, origin, i + 1, &mut out)?;
    }
    Ok(out)
}

fn push_object(v: Value, origin: &str, doc: usize, out: &mut Vec<Value>) -> anyhow::Result<()> {
    let kind = v["kind"].as_str().unwrap_or("");
    if v["apiVersion"].as_str().is_none() || kind.is_empty() {
        return Err(anyhow!(
            "{origin}: document {doc} has no apiVersion or kind"
        ));
    }
    if kind == "List" || (kind.ends_with("List") && v["items"].is_array()) {
        for item in v["items"].as_array().cloned().unwrap_or_default() {
            push_object(item, origin, doc, out)?;
        }
        return Ok(());
    }
    if v["metadata"]["name"].as_str().is_none() {
        return Err(anyhow!(
            "{origin}: document {doc} ({kind}) has no metadata.name"
        ));
    }
    out.push(v);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_doc_lists_and_errors() {
        let v = parse(
            "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: b}}\n",
            "t.yaml",
        )
        .unwrap();
        assert_eq!(v.len(), 2);
        let e = parse("apiVersion: v1\nkind: Pod\nmetadata: {}\n", "x.yaml").unwrap_err();
        assert!(
            e.to_string()
                .contains("x.yaml: document 1 (Pod) has no metadata.name"),
            "{e}"
        );
        let e = parse("a: [", "y.yaml").unwrap_err();
        assert!(e.to_string().contains("y.yaml: document 1"), "{e}");
    }
}
