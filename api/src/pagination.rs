//! Paging of list endpoints: `?page=1&per_page=50`, answered with the page and a total.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{AppError, FieldErrors};

pub const DEFAULT_PER_PAGE: i64 = 50;
pub const MAX_PER_PAGE: i64 = 500;

/// Which page to list.
#[derive(Debug, Default, Clone, Copy, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1-based page number; default 1.
    #[param(minimum = 1, maximum = 1_000_000)]
    pub page: Option<i64>,
    /// Items per page, 1–500; default 50.
    #[param(minimum = 1, maximum = 500)]
    pub per_page: Option<i64>,
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: i64,
    pub per_page: i64,
    /// Items in the whole list.
    pub total: i64,
}

impl PageQuery {
    fn page_number(self) -> i64 {
        self.page.unwrap_or(1)
    }

    fn size(self) -> i64 {
        self.per_page.unwrap_or(DEFAULT_PER_PAGE)
    }

    /// SQL `LIMIT` and `OFFSET` for this page.
    ///
    /// # Errors
    /// 400 naming `page` or `per_page` when out of range.
    pub fn limit_offset(self) -> Result<(i64, i64), AppError> {
        let mut errors = FieldErrors::new();
        if self.page_number() < 1 || self.page_number() > 1_000_000 {
            errors.insert(
                "page".to_owned(),
                "must be between 1 and 1000000".to_owned(),
            );
        }
        if !(1..=MAX_PER_PAGE).contains(&self.size()) {
            errors.insert(
                "per_page".to_owned(),
                format!("must be between 1 and {MAX_PER_PAGE}"),
            );
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        Ok((self.size(), (self.page_number() - 1) * self.size()))
    }

    /// Wraps items of this page.
    #[must_use]
    pub fn page<T>(self, items: Vec<T>, total: i64) -> Page<T> {
        Page {
            items,
            page: self.page_number(),
            per_page: self.size(),
            total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_map_to_limit_and_offset() {
        let q = PageQuery {
            page: Some(3),
            per_page: Some(20),
        };
        assert_eq!(q.limit_offset().ok(), Some((20, 40)));
        assert_eq!(PageQuery::default().limit_offset().ok(), Some((50, 0)));
    }

    #[test]
    fn out_of_range_paging_names_the_fields() {
        let q = PageQuery {
            page: Some(0),
            per_page: Some(501),
        };
        match q.limit_offset() {
            Err(AppError::Validation(fields)) => {
                assert!(fields.contains_key("page") && fields.contains_key("per_page"));
            }
            other => panic!("expected validation error, got {other:?}"),
        }
    }
}
