//! Query results as the async (3.x/4.2) database functions return them: the
//! columns, a `stream<row>` and a `future<result<_, error>>`, made from the
//! rows the synchronous query already read (bounded by the instance's
//! memory limit as they are read). The future is `ok`: a failure is the
//! query's own `err`, before any stream exists.

use wasmi::Error;

use super::GuestState;
use super::wasi_p3::ready_future;
use flint_engine::canon::{Ty, Value};
use flint_engine::component::{SourceRead, StreamSource};

/// Rows the host holds, handed to the guest in the counts it reads.
struct Rows(std::vec::IntoIter<Value>);

impl StreamSource for Rows {
    fn read(&mut self, max: usize) -> SourceRead {
        let rows: Vec<Value> = self.0.by_ref().take(max.max(1)).collect();
        if rows.is_empty() {
            SourceRead::End
        } else {
            SourceRead::Values(rows)
        }
    }
}

/// The row type of a `(columns, rows)` result type: its second field's
/// element.
pub(super) const fn row_of(result: &'static Ty) -> &'static Ty {
    match result {
        Ty::Tuple([_, Ty::List(row)]) => row,
        _ => panic!("a query result type is (columns, list<row>)"),
    }
}

/// `ok((columns, rows))` → `ok((columns, stream<row>, future))`; an `err`
/// is returned as it is. `done` is the future's type (`result<_, error>`).
pub(super) fn streamed(
    state: &mut GuestState,
    answer: Value,
    row: &'static Ty,
    done: &'static Ty,
) -> Result<Value, Error> {
    let result = match answer {
        Value::Variant(0, Some(result)) => *result,
        other => return Ok(other),
    };
    let mut fields = result.into_tuple()?.into_iter();
    let (Some(columns), Some(Value::List(rows))) = (fields.next(), fields.next()) else {
        return Err(Error::new("host bug: a query result is (columns, rows)"));
    };
    let stream = state
        .tasks
        .new_stream_from(Some(row), Box::new(Rows(rows.into_iter())))?;
    let future = ready_future(state, done, Value::ok_unit())?;
    Ok(Value::ok(Value::Tuple(vec![
        columns,
        Value::Handle(stream),
        future,
    ])))
}

/// The columns type of a `(columns, rows)` result type: its first field.
pub(super) const fn columns_of(result: &'static Ty) -> Ty {
    match result {
        Ty::Tuple([columns, _]) => *columns,
        _ => panic!("a query result type is (columns, list<row>)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_in_the_counts_asked_for() {
        let mut rows = Rows(vec![Value::U8(1), Value::U8(2), Value::U8(3)].into_iter());
        assert!(matches!(rows.read(2), SourceRead::Values(v) if v.len() == 2));
        assert!(matches!(rows.read(2), SourceRead::Values(v) if v.len() == 1));
        assert!(matches!(rows.read(2), SourceRead::End));
    }
}
