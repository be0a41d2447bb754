import Dataset
import Foundation
import Testing

/// The dataset card (README.md of every version), rendered from a hand-made manifest and compared whole: what a
/// person reads is exactly what is tested.
@Suite struct CardTests {
    static func manifest(redacted: Bool = false, quarantined: Bool = true) -> DatasetManifest {
        let shard = { (name: String, samples: Int) in
            DatasetManifest.ShardRecord(basename: "shard.\(name).mds.zstd", samples: samples, bytes: 100, rawBytes: 200, sha256: name, createdBy: "v1")
        }
        var m = DatasetManifest(
            dataset: "fb", version: "v2", parent: "v1", runId: "run-42", createdAt: "2026-11-25T13:00:00.000Z", toolVersion: "0.2.0",
            pipeline: .init(name: "fb", path: "pipelines/fb.yaml", configSha256: "abc123"),
            cursor: .init(column: "id", type: "bigint", from: "100", to: "130"),
            counts: .init(samples: 128, newSamples: 28, rowsRead: 30, quarantined: quarantined ? 2 : 0),
            splits: ["train": .init(samples: 100, newSamples: 20, shards: [shard("a", 80), shard("b", 20)]),
                     "val": .init(samples: 28, newSamples: 8, shards: [shard("c", 28)])],
            columns: [.init(name: "__key__", encoding: "str", source: "id", transform: "key"),
                      .init(name: "label", encoding: "str", source: "label", transform: "plain"),
                      .init(name: "frames", encoding: "ndarray:uint8", source: "media", transform: "video_frames")],
            quarantine: .init(count: quarantined ? 2 : 0, byReason: quarantined ? ["media_corrupt": 1, "null_value": 1] : [:],
                              file: quarantined ? "quarantine.jsonl" : nil),
            stats: .init(durationSeconds: 1.234, bytesWritten: 300, sourceBytes: 4000))
        if redacted {
            m.redactions = [.init(at: "2026-11-25T14:00:00Z", keys: 3, reason: "user request | GDPR", method: "key", keysDigest: "d", shardsRewritten: 1)]
        }
        return m
    }

    @Test func rendersEverythingTheManifestKnows() {
        let expected = """
            # fb v2

            An immutable version of the `fb` dataset: mosaicml-streaming MDS shards, one directory per split, published by etl. This card is rendered from `manifest.json` when the version is published and again when `etl forget` removes samples from it; `manifest.json` stays the authoritative record (`etl report` renders the card afresh).

            |  |  |
            |---|---|
            | dataset | `fb` |
            | version | `v2` |
            | parent | `v1` |
            | created | 2026-11-25T13:00:00.000Z |
            | run id | `run-42` |
            | tool | etl 0.2.0 |

            ## Source

            - pipeline: `fb` from `pipelines/fb.yaml`, sha256 `abc123`
            - cursor: `id` (bigint) in (100, 130]
            - this run read 30 source rows in 1.2 s and wrote 300 bytes of shards

            ## Samples

            | split | samples | new in this version | shards |
            |---|---:|---:|---:|
            | train | 100 | 20 | 2 |
            | val | 28 | 8 | 1 |
            | **total** | 128 | 28 | 3 |

            ## Columns

            | column | encoding | source | transform |
            |---|---|---|---|
            | `__key__` | `str` | `id` | key |
            | `label` | `str` | `label` | plain |
            | `frames` | `ndarray:uint8` | `media` | video_frames |

            ## Quarantine

            This run quarantined 2 rows (`quarantine.jsonl`: key, reason, message, column); earlier runs' rows stay in their own versions.

            | reason | rows |
            |---|---:|
            | `media_corrupt` | 1 |
            | `null_value` | 1 |

            ## Redactions

            None recorded in the manifest this card was rendered from.

            ## Loading

            With `pip install mosaicml-streaming`:

            ```python
            from streaming import StreamingDataset

            dataset = StreamingDataset(remote="datasets/fb/v2", local="/tmp/mds-cache/fb-v2", split="train", shuffle=False)
            print(len(dataset))
            print(dataset[0]["__key__"])
            ```

            """
        expectSameText(DatasetCard.render(Self.manifest()), expected)
    }

    @Test func firstVersionRedactionsAndNoQuarantine() {
        var m = Self.manifest(redacted: true, quarantined: false)
        m.parent = nil
        m.cursor.from = nil
        m.cursor.revisitFrom = nil
        let card = DatasetCard.render(m, remote: "s3://bucket/fb/v2")
        #expect(card.contains("| parent | none (first version) |"))
        #expect(card.contains("- cursor: `id` (bigint) in (−∞, 130]"))
        #expect(card.contains("This run quarantined no rows."))
        #expect(card.contains("""
            | at | samples removed | reason | method | shards rewritten |
            |---|---:|---|---|---:|
            | 2026-11-25T14:00:00Z | 3 | user request \\| GDPR | key | 1 |
            """), "a | in a reason is escaped, not a new column:\n\(card)")
        #expect(card.contains("remote=\"s3://bucket/fb/v2\""))
    }

    @Test func revisitedRangeIsStated() {
        var m = Self.manifest()
        m.cursor.revisitFrom = "90"
        #expect(DatasetCard.render(m).contains("- also re-read (90, 100] for rows committed late, that no earlier version had published"))
    }
}

/// Line by line, so a failure names the first line that differs.
func expectSameText(_ actual: String, _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let a = actual.components(separatedBy: "\n"), e = expected.components(separatedBy: "\n")
    for (index, (line, wanted)) in zip(a, e).enumerated() where line != wanted {
        Issue.record("line \(index + 1) differs:\n  actual:   \(line)\n  expected: \(wanted)\nwhole text:\n\(actual)", sourceLocation: sourceLocation)
        return
    }
    #expect(a.count == e.count, "line counts differ (\(a.count) vs \(e.count)); whole text:\n\(actual)", sourceLocation: sourceLocation)
}
