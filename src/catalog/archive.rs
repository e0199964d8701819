//! Archive rounds, their pieces, and the log segments shipped into them (SPEC §2.3, §4.2): the
//! records the archive workers and `archive-push` write and the `CDB_OB_ARCHIVELOG*` views read.
//!
//! Times called SCN are nanoseconds since the Unix epoch, as OceanBase counts them; a segment's
//! SCN is the moment it was closed (its last write), so "the log up to time T" is every segment
//! whose SCN is at most T.

use super::{Catalog, CatalogError, Row, Txn, Value, now_micros};

/// The one archive destination per tenant (`LOG_ARCHIVE_DEST`).
pub const DEST_ID: i64 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    pub tenant_id: i64,
    pub round_id: i64,
    pub status: String,
    pub start_scn: i64,
    pub checkpoint_scn: i64,
    pub used_piece_id: i64,
    /// Microseconds, as `CDB_OB_ARCHIVELOG.PIECE_SWITCH_INTERVAL` shows it.
    pub piece_switch_interval: i64,
    /// The archive destination's URI.
    pub path: String,
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub piece_id: i64,
    pub round_id: i64,
    pub status: String,
    pub start_scn: i64,
}

/// One archived log segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub tenant_id: i64,
    pub name: String,
    pub round_id: i64,
    pub piece_id: i64,
    pub size: i64,
    pub stored_size: i64,
    pub close_scn: i64,
    pub hash: String,
}

const ROUND_COLUMNS: &str = "tenant_id, round_id, status, start_scn, checkpoint_scn, \
    used_piece_id, piece_switch_interval, path, comment";

fn round(row: Row) -> Round {
    let int = |i: usize| row[i].as_i64().unwrap_or(0);
    let text = |i: usize| row[i].as_str().unwrap_or("").to_string();
    Round {
        tenant_id: int(0),
        round_id: int(1),
        status: text(2),
        start_scn: int(3),
        checkpoint_scn: int(4),
        used_piece_id: int(5),
        piece_switch_interval: int(6),
        path: text(7),
        comment: text(8),
    }
}

const SEGMENT_COLUMNS: &str =
    "tenant_id, name, round_id, piece_id, size, stored_size, close_scn, hash";

fn segment(row: Row) -> Segment {
    let int = |i: usize| row[i].as_i64().unwrap_or(0);
    Segment {
        tenant_id: int(0),
        name: row[1].as_str().unwrap_or("").to_string(),
        round_id: int(2),
        piece_id: int(3),
        size: int(4),
        stored_size: int(5),
        close_scn: int(6),
        hash: row[7].as_str().unwrap_or("").to_string(),
    }
}

/// Nanoseconds since the Unix epoch.
pub fn now_scn() -> i64 {
    now_micros() * 1000
}

impl Catalog {
    /// The newest round of a tenant, whatever its state.
    pub fn latest_round(&self, tenant_id: i64) -> Result<Option<Round>, CatalogError> {
        let rows = self.read(
            &format!(
                "SELECT {ROUND_COLUMNS} FROM archive_round WHERE tenant_id = ? AND dest_id = ? \
                 ORDER BY round_id DESC LIMIT 1"
            ),
            &[tenant_id.into(), DEST_ID.into()],
        )?;
        Ok(rows.into_iter().next().map(round))
    }

    /// One round of a tenant.
    pub fn round(&self, tenant_id: i64, round_id: i64) -> Result<Option<Round>, CatalogError> {
        let rows = self.read(
            &format!(
                "SELECT {ROUND_COLUMNS} FROM archive_round WHERE tenant_id = ? AND dest_id = ? \
                 AND round_id = ?"
            ),
            &[tenant_id.into(), DEST_ID.into(), round_id.into()],
        )?;
        Ok(rows.into_iter().next().map(round))
    }

    /// The newest round of every tenant whose round is in one of `statuses`.
    pub fn rounds_in(&self, statuses: &[&str]) -> Result<Vec<Round>, CatalogError> {
        let marks = vec!["?"; statuses.len()].join(", ");
        let params: Vec<Value> = statuses.iter().map(|s| (*s).into()).collect();
        let rows = self.read(
            &format!(
                "SELECT {ROUND_COLUMNS} FROM archive_round r WHERE status IN ({marks}) \
                 AND round_id = (SELECT max(round_id) FROM archive_round l \
                                 WHERE l.tenant_id = r.tenant_id AND l.dest_id = r.dest_id) \
                 ORDER BY tenant_id"
            ),
            &params,
        )?;
        Ok(rows.into_iter().map(round).collect())
    }

    /// Starts a new round in PREPARE, numbered after the tenant's last one.
    /// A new id for the rounds one `ALTER SYSTEM ARCHIVELOG` for all tenants starts.
    pub fn new_cluster_round(&self) -> Result<i64, CatalogError> {
        self.write(|tx| Catalog::next_id(tx, "archive_cluster_round"))
    }

    /// Starts a round of a tenant (PREPARE); `cluster_round_id` when a cluster-level
    /// `ARCHIVELOG` started it.
    pub fn new_round(
        &self,
        tenant_id: i64,
        path: &str,
        piece_switch_interval_us: i64,
        cluster_round_id: Option<i64>,
    ) -> Result<Round, CatalogError> {
        self.write(|tx| {
            let last = tx.query(
                "SELECT coalesce(max(round_id), 0) FROM archive_round WHERE tenant_id = ?",
                &[tenant_id.into()],
            )?;
            let round_id = last[0][0].as_i64().unwrap_or(0) + 1;
            let scn = now_scn();
            tx.execute(
                "INSERT INTO archive_round (tenant_id, dest_id, round_id, incarnation, status, \
                 start_scn, checkpoint_scn, base_piece_id, used_piece_id, piece_switch_interval, \
                 input_bytes, output_bytes, comment, path, start_ts, cluster_round_id) \
                 VALUES (?, ?, ?, 1, 'PREPARE', ?, ?, 0, 0, ?, 0, 0, '', ?, ?, ?)",
                &[
                    tenant_id.into(),
                    DEST_ID.into(),
                    round_id.into(),
                    scn.into(),
                    scn.into(),
                    piece_switch_interval_us.into(),
                    path.into(),
                    now_micros().into(),
                    cluster_round_id.into(),
                ],
            )?;
            Ok(Round {
                tenant_id,
                round_id,
                status: "PREPARE".into(),
                start_scn: scn,
                checkpoint_scn: scn,
                used_piece_id: 0,
                piece_switch_interval: piece_switch_interval_us,
                path: path.to_string(),
                comment: String::new(),
            })
        })
    }

    /// Moves a round to `to` if it is still in one of `from`; says whether it moved. `comment`
    /// replaces the round's COMMENT when given. STOP stamps the end time.
    pub fn move_round(
        &self,
        tenant_id: i64,
        round_id: i64,
        from: &[&str],
        to: &str,
        comment: Option<&str>,
    ) -> Result<bool, CatalogError> {
        let marks = vec!["?"; from.len()].join(", ");
        let mut params: Vec<Value> = vec![
            to.into(),
            comment.map_or(Value::Null, Value::from),
            if to == "STOP" {
                now_micros().into()
            } else {
                Value::Null
            },
            tenant_id.into(),
            DEST_ID.into(),
            round_id.into(),
        ];
        params.extend(from.iter().map(|s| Value::from(*s)));
        self.write(|tx| {
            let changed = tx.execute(
                &format!(
                    "UPDATE archive_round SET status = ?, comment = coalesce(?, comment), \
                     end_ts = coalesce(?, end_ts) \
                     WHERE tenant_id = ? AND dest_id = ? AND round_id = ? AND status IN ({marks})"
                ),
                &params,
            )?;
            Ok(changed > 0)
        })
    }

    /// The ACTIVE piece of a round, if it has one.
    pub fn active_piece(
        &self,
        tenant_id: i64,
        round_id: i64,
    ) -> Result<Option<Piece>, CatalogError> {
        let rows = self.read(
            "SELECT piece_id, round_id, status, start_scn FROM archive_piece \
             WHERE tenant_id = ? AND round_id = ? AND copy_id = 0 AND status = 'ACTIVE'",
            &[tenant_id.into(), round_id.into()],
        )?;
        Ok(rows.into_iter().next().map(|r| Piece {
            piece_id: r[0].as_i64().unwrap_or(0),
            round_id: r[1].as_i64().unwrap_or(0),
            status: r[2].as_str().unwrap_or("").to_string(),
            start_scn: r[3].as_i64().unwrap_or(0),
        }))
    }

    /// Opens a new ACTIVE piece in a round; freezes the one before it, which must have reached
    /// FREEZING already (see [`Catalog::start_freezing`]).
    pub fn open_piece(&self, round: &Round, previous: Option<i64>) -> Result<i64, CatalogError> {
        self.write(|tx| {
            let scn = now_scn();
            if let Some(previous) = previous {
                tx.execute(
                    "UPDATE archive_piece SET status = 'FROZEN', end_scn = ?, \
                     file_status = 'AVAILABLE' WHERE piece_id = ? AND copy_id = 0 \
                     AND status = 'FREEZING'",
                    &[scn.into(), previous.into()],
                )?;
            }
            let piece_id = Catalog::next_id(tx, "archive_piece")?;
            tx.execute(
                "INSERT INTO archive_piece (tenant_id, dest_id, round_id, piece_id, copy_id, \
                 incarnation, status, start_scn, checkpoint_scn, end_scn, input_bytes, \
                 output_bytes, file_count, file_status, path) \
                 VALUES (?, ?, ?, ?, 0, 1, 'ACTIVE', ?, ?, 0, 0, 0, 0, 'AVAILABLE', ?)",
                &[
                    round.tenant_id.into(),
                    DEST_ID.into(),
                    round.round_id.into(),
                    piece_id.into(),
                    scn.into(),
                    scn.into(),
                    round.path.as_str().into(),
                ],
            )?;
            tx.execute(
                "UPDATE archive_round SET used_piece_id = ?, \
                 base_piece_id = CASE WHEN base_piece_id = 0 THEN ? ELSE base_piece_id END \
                 WHERE tenant_id = ? AND dest_id = ? AND round_id = ?",
                &[
                    piece_id.into(),
                    piece_id.into(),
                    round.tenant_id.into(),
                    DEST_ID.into(),
                    round.round_id.into(),
                ],
            )?;
            Ok(piece_id)
        })
    }

    /// ACTIVE → FREEZING: the piece takes no more segments.
    pub fn start_freezing(&self, piece_id: i64) -> Result<bool, CatalogError> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE archive_piece SET status = 'FREEZING' WHERE piece_id = ? AND copy_id = 0 \
                 AND status = 'ACTIVE'",
                &[piece_id.into()],
            )? > 0)
        })
    }

    /// FREEZING → FROZEN, for the last piece of a stopping round.
    pub fn freeze_piece(&self, piece_id: i64) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE archive_piece SET status = 'FROZEN', end_scn = ? WHERE piece_id = ? \
                 AND copy_id = 0 AND status = 'FREEZING'",
                &[now_scn().into(), piece_id.into()],
            )?;
            Ok(())
        })
    }

    pub fn segment(&self, tenant_id: i64, name: &str) -> Result<Option<Segment>, CatalogError> {
        let rows = self.read(
            &format!(
                "SELECT {SEGMENT_COLUMNS} FROM archive_segment WHERE tenant_id = ? AND name = ?"
            ),
            &[tenant_id.into(), name.into()],
        )?;
        Ok(rows.into_iter().next().map(segment))
    }

    /// The segments a piece holds, in name order, as the catalog recorded them.
    pub fn piece_segments(&self, piece_id: i64) -> Result<Vec<Segment>, CatalogError> {
        let rows = self.read(
            &format!(
                "SELECT {SEGMENT_COLUMNS} FROM archive_segment WHERE piece_id = ? ORDER BY name"
            ),
            &[piece_id.into()],
        )?;
        Ok(rows.into_iter().map(segment).collect())
    }

    /// Marks one copy of a piece (0: the original) AVAILABLE or BROKEN after a validation.
    pub fn set_piece_file_status(
        &self,
        piece_id: i64,
        copy_id: i64,
        file_status: &str,
    ) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE archive_piece SET file_status = ? WHERE piece_id = ? AND copy_id = ?",
                &[file_status.into(), piece_id.into(), copy_id.into()],
            )?;
            Ok(())
        })
    }

    /// Records a segment that is durable in the archive, in the round's ACTIVE piece, and moves
    /// the piece's and the round's counters and checkpoints on. Returns the piece it went into,
    /// or `None` when the round has no ACTIVE piece (it is switching or ending; try again).
    pub fn record_segment(&self, seg: &Segment) -> Result<Option<i64>, CatalogError> {
        self.write(|tx| {
            let piece = tx.query(
                "SELECT piece_id FROM archive_piece WHERE tenant_id = ? AND round_id = ? \
                 AND copy_id = 0 AND status = 'ACTIVE'",
                &[seg.tenant_id.into(), seg.round_id.into()],
            )?;
            let Some(piece_id) = piece.first().and_then(|r| r[0].as_i64()) else {
                return Ok(None);
            };
            record_in(tx, seg, piece_id)?;
            Ok(Some(piece_id))
        })
    }

    /// Segments of a tenant closed at or before `until_scn`, in name order.
    pub fn segments_until(
        &self,
        tenant_id: i64,
        until_scn: i64,
    ) -> Result<Vec<Segment>, CatalogError> {
        let rows = self.read(
            &format!(
                "SELECT {SEGMENT_COLUMNS} FROM archive_segment WHERE tenant_id = ? \
                 AND close_scn <= ? ORDER BY name"
            ),
            &[tenant_id.into(), until_scn.into()],
        )?;
        Ok(rows.into_iter().map(segment).collect())
    }
}

fn record_in(tx: &dyn Txn, seg: &Segment, piece_id: i64) -> Result<(), CatalogError> {
    tx.execute(
        &format!(
            "INSERT INTO archive_segment ({SEGMENT_COLUMNS}, archived_ts) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ),
        &[
            seg.tenant_id.into(),
            seg.name.as_str().into(),
            seg.round_id.into(),
            piece_id.into(),
            seg.size.into(),
            seg.stored_size.into(),
            seg.close_scn.into(),
            seg.hash.as_str().into(),
            now_micros().into(),
        ],
    )?;
    tx.execute(
        "UPDATE archive_piece SET input_bytes = input_bytes + ?, \
         output_bytes = output_bytes + ?, file_count = file_count + 1, \
         checkpoint_scn = max(checkpoint_scn, ?) WHERE piece_id = ? AND copy_id = 0",
        &[
            seg.size.into(),
            seg.stored_size.into(),
            seg.close_scn.into(),
            piece_id.into(),
        ],
    )?;
    tx.execute(
        "UPDATE archive_round SET input_bytes = input_bytes + ?, \
         output_bytes = output_bytes + ?, checkpoint_scn = max(checkpoint_scn, ?) \
         WHERE tenant_id = ? AND dest_id = ? AND round_id = ?",
        &[
            seg.size.into(),
            seg.stored_size.into(),
            seg.close_scn.into(),
            seg.tenant_id.into(),
            DEST_ID.into(),
            seg.round_id.into(),
        ],
    )?;
    Ok(())
}

impl Catalog {
    /// `ARCHIVELOG` or `NOARCHIVELOG`, as `DBA_OB_TENANTS.LOG_MODE` shows it.
    pub fn set_log_mode(&self, tenant_id: i64, mode: &str) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE tenant SET log_mode = ? WHERE tenant_id = ?",
                &[mode.into(), tenant_id.into()],
            )?;
            Ok(())
        })
    }

    /// The newest segment of a round archived under a name of the same length as `before` and
    /// ordered before it: the segment `before` follows, when names are counters or WAL names.
    pub fn segment_before(
        &self,
        tenant_id: i64,
        round_id: i64,
        before: &str,
    ) -> Result<Option<String>, CatalogError> {
        let rows = self.read(
            "SELECT max(name) FROM archive_segment WHERE tenant_id = ? AND round_id = ? \
             AND name < ? AND length(name) = length(?)",
            &[
                tenant_id.into(),
                round_id.into(),
                before.into(),
                before.into(),
            ],
        )?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|mut r| r.pop()?.into_string()))
    }

    /// The name of the newest segment archived for a tenant, if any.
    pub fn last_segment_name(&self, tenant_id: i64) -> Result<Option<String>, CatalogError> {
        let rows = self.read(
            "SELECT max(name) FROM archive_segment WHERE tenant_id = ?",
            &[tenant_id.into()],
        )?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|mut r| r.pop()?.into_string()))
    }
}

impl Catalog {
    /// Whether a set was made with PLUS ARCHIVELOG; `None` when the catalog does not know it.
    pub fn set_plus_archivelog(&self, set_id: i64) -> Result<Option<bool>, CatalogError> {
        let rows = self.read(
            "SELECT plus_archivelog FROM backup_set WHERE backup_set_id = ? AND copy_id = 0",
            &[set_id.into()],
        )?;
        Ok(rows.first().map(|r| r[0].as_i64() == Some(1)))
    }
}
