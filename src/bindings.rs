//! Every Python-visible class and function, and the one error conversion.

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::error::{Error, Result};
use crate::routes::{RouteSpec, RouteTable};

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyRouteTable>()?;
    Ok(())
}

/// One route table entry as Python passes it: (method, pattern, level, name).
type RouteTuple = (String, String, String, String);

/// The compiled route table: `lookup(method, path) -> (level, name)`.
#[pyclass(module = "mlflow_descope_auth._core", name = "RouteTable", frozen)]
pub struct PyRouteTable {
    /// Shared with whatever makes decisions from it (`Core.set_routes`).
    pub(crate) table: Arc<RouteTable>,
}

#[pymethods]
impl PyRouteTable {
    #[new]
    #[allow(
        clippy::needless_pass_by_value,
        reason = "PyO3 extracts the Python sequences into owned vectors"
    )]
    #[pyo3(signature = (routes, *, static_prefix = "", first_match = Vec::new()))]
    fn new(
        routes: Vec<RouteTuple>,
        static_prefix: &str,
        first_match: Vec<RouteTuple>,
    ) -> PyResult<Self> {
        let build = || -> Result<RouteTable> {
            RouteTable::new(&specs(&first_match)?, &specs(&routes)?, static_prefix)
        };
        let table = build().map_err(route_table_error)?;
        Ok(Self {
            table: Arc::new(table),
        })
    }

    fn lookup(&self, method: &str, path: &str) -> (&'static str, String) {
        let route = self.table.lookup(method, path);
        (route.requirement.as_str(), route.name.to_owned())
    }

    fn __len__(&self) -> usize {
        self.table.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "RouteTable(<{} routes>, static_prefix={:?})",
            self.table.len(),
            self.table.static_prefix()
        )
    }
}

fn specs(routes: &[RouteTuple]) -> Result<Vec<RouteSpec<'_>>> {
    routes
        .iter()
        .map(|(method, pattern, level, name)| RouteSpec::parse(method, pattern, level, name))
        .collect()
}

/// A malformed table is the caller's mistake: `ValueError`, naming the entry.
// TODO(merge): once the one `From<Error> for PyErr` lands with the core
// bindings, map `Error::RouteTable` to `ValueError` there and drop this.
#[allow(
    clippy::needless_pass_by_value,
    reason = "a map_err callback receives the error by value"
)]
fn route_table_error(error: Error) -> PyErr {
    PyValueError::new_err(error.to_string())
}
