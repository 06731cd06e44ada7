//! The CDEvents types of spec 0.4.1, as the CDEvents Go SDK Flux vendors
//! (`github.com/cdevents/sdk-go` v0.5.0, package `pkg/api/v04`) knows them:
//! for each, its exact type, its subject's type, and the content fields of
//! its JSON schema (`pkg/api/schemas.go`, `https://cdevents.dev/0.4.1/schema/...`)
//! with the Go struct that carries them (`pkg/api/zz_<type>_<version>.go`).
//!
//! A field is `required` when the schema lists it, which is exactly when
//! the Go struct marshals it even when empty (no `omitempty`), so the
//! schema then sees `""` or `null` for a missing one. `non_empty` is the
//! schema's `minLength: 1` (an `anyOf` of strings reduces to it or to
//! nothing); `one_of` its `enum`. The `format` keywords are annotations
//! only (the SDK's `jsonschema/v6` compiler does not assert formats). A
//! `purl` field carries the SDK's `validate:"purl"` tag, checked even when
//! empty.

/// A CDEvents type the SDK knows.
#[derive(Debug)]
pub(super) struct EventType {
    /// `<subject>` of `dev.cdevents.<subject>.<predicate>.<version>`.
    pub(super) subject: &'static str,
    /// `<predicate>`.
    pub(super) predicate: &'static str,
    /// The one version the 0.4.1 schema admits.
    pub(super) version: &'static str,
    /// What `subject.type` must be.
    pub(super) subject_type: &'static str,
    /// The fields of `subject.content`.
    pub(super) content: &'static [Field],
}

/// A field of a subject's content.
#[derive(Debug)]
pub(super) enum Field {
    /// A string.
    Text {
        name: &'static str,
        required: bool,
        non_empty: bool,
        one_of: &'static [&'static str],
        purl: bool,
    },
    /// A list of strings.
    Texts(&'static str),
    /// A reference to another subject: `{id, source}` (`*Reference`).
    Reference { name: &'static str, required: bool },
    /// An object of its own fields (a pointer to a struct).
    Object {
        name: &'static str,
        required: bool,
        fields: &'static [Field],
    },
}

impl Field {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Field::Text { name, .. }
            | Field::Texts(name)
            | Field::Reference { name, .. }
            | Field::Object { name, .. } => name,
        }
    }
}

const fn text(
    name: &'static str,
    required: bool,
    non_empty: bool,
    one_of: &'static [&'static str],
) -> Field {
    Field::Text {
        name,
        required,
        non_empty,
        one_of,
        purl: false,
    }
}

const fn purl(name: &'static str, required: bool, non_empty: bool) -> Field {
    Field::Text {
        name,
        required,
        non_empty,
        one_of: &[],
        purl: true,
    }
}

/// The 45 types of `v04.CDEventsTypes` (custom types aside).
pub(super) const EVENT_TYPES: &[EventType] = &[
    EventType {
        subject: "artifact",
        predicate: "deleted",
        version: "0.1.0",
        subject_type: "artifact",
        content: &[text("user", false, true, &[])],
    },
    EventType {
        subject: "artifact",
        predicate: "downloaded",
        version: "0.1.0",
        subject_type: "artifact",
        content: &[text("user", false, true, &[])],
    },
    EventType {
        subject: "artifact",
        predicate: "packaged",
        version: "0.2.0",
        subject_type: "artifact",
        content: &[
            Field::Reference {
                name: "change",
                required: true,
            },
            Field::Object {
                name: "sbom",
                required: false,
                fields: &[text("uri", true, true, &[])],
            },
        ],
    },
    EventType {
        subject: "artifact",
        predicate: "published",
        version: "0.2.0",
        subject_type: "artifact",
        content: &[
            Field::Object {
                name: "sbom",
                required: false,
                fields: &[text("uri", true, true, &[])],
            },
            text("user", false, true, &[]),
        ],
    },
    EventType {
        subject: "artifact",
        predicate: "signed",
        version: "0.2.0",
        subject_type: "artifact",
        content: &[text("signature", true, true, &[])],
    },
    EventType {
        subject: "branch",
        predicate: "created",
        version: "0.2.0",
        subject_type: "branch",
        content: &[Field::Reference {
            name: "repository",
            required: false,
        }],
    },
    EventType {
        subject: "branch",
        predicate: "deleted",
        version: "0.2.0",
        subject_type: "branch",
        content: &[Field::Reference {
            name: "repository",
            required: false,
        }],
    },
    EventType {
        subject: "build",
        predicate: "finished",
        version: "0.2.0",
        subject_type: "build",
        content: &[purl("artifactId", false, false)],
    },
    EventType {
        subject: "build",
        predicate: "queued",
        version: "0.2.0",
        subject_type: "build",
        content: &[],
    },
    EventType {
        subject: "build",
        predicate: "started",
        version: "0.2.0",
        subject_type: "build",
        content: &[],
    },
    EventType {
        subject: "change",
        predicate: "abandoned",
        version: "0.2.0",
        subject_type: "change",
        content: &[Field::Reference {
            name: "repository",
            required: false,
        }],
    },
    EventType {
        subject: "change",
        predicate: "created",
        version: "0.3.0",
        subject_type: "change",
        content: &[
            text("description", false, true, &[]),
            Field::Reference {
                name: "repository",
                required: false,
            },
        ],
    },
    EventType {
        subject: "change",
        predicate: "merged",
        version: "0.2.0",
        subject_type: "change",
        content: &[Field::Reference {
            name: "repository",
            required: false,
        }],
    },
    EventType {
        subject: "change",
        predicate: "reviewed",
        version: "0.2.0",
        subject_type: "change",
        content: &[Field::Reference {
            name: "repository",
            required: false,
        }],
    },
    EventType {
        subject: "change",
        predicate: "updated",
        version: "0.2.0",
        subject_type: "change",
        content: &[Field::Reference {
            name: "repository",
            required: false,
        }],
    },
    EventType {
        subject: "environment",
        predicate: "created",
        version: "0.2.0",
        subject_type: "environment",
        content: &[
            text("name", false, false, &[]),
            text("url", false, false, &[]),
        ],
    },
    EventType {
        subject: "environment",
        predicate: "deleted",
        version: "0.2.0",
        subject_type: "environment",
        content: &[text("name", false, false, &[])],
    },
    EventType {
        subject: "environment",
        predicate: "modified",
        version: "0.2.0",
        subject_type: "environment",
        content: &[
            text("name", false, false, &[]),
            text("url", false, false, &[]),
        ],
    },
    EventType {
        subject: "incident",
        predicate: "detected",
        version: "0.2.0",
        subject_type: "incident",
        content: &[
            text("description", false, false, &[]),
            Field::Reference {
                name: "environment",
                required: true,
            },
            Field::Reference {
                name: "service",
                required: false,
            },
            purl("artifactId", false, true),
        ],
    },
    EventType {
        subject: "incident",
        predicate: "reported",
        version: "0.2.0",
        subject_type: "incident",
        content: &[
            text("description", false, false, &[]),
            Field::Reference {
                name: "environment",
                required: true,
            },
            text("ticketURI", true, true, &[]),
            Field::Reference {
                name: "service",
                required: false,
            },
            purl("artifactId", false, true),
        ],
    },
    EventType {
        subject: "incident",
        predicate: "resolved",
        version: "0.2.0",
        subject_type: "incident",
        content: &[
            text("description", false, false, &[]),
            Field::Reference {
                name: "environment",
                required: true,
            },
            Field::Reference {
                name: "service",
                required: false,
            },
            purl("artifactId", false, true),
        ],
    },
    EventType {
        subject: "pipelinerun",
        predicate: "finished",
        version: "0.2.0",
        subject_type: "pipelineRun",
        content: &[
            text("pipelineName", false, false, &[]),
            text("url", false, false, &[]),
            text("outcome", false, false, &[]),
            text("errors", false, false, &[]),
        ],
    },
    EventType {
        subject: "pipelinerun",
        predicate: "queued",
        version: "0.2.0",
        subject_type: "pipelineRun",
        content: &[
            text("pipelineName", false, false, &[]),
            text("url", false, false, &[]),
        ],
    },
    EventType {
        subject: "pipelinerun",
        predicate: "started",
        version: "0.2.0",
        subject_type: "pipelineRun",
        content: &[
            text("pipelineName", true, false, &[]),
            text("url", true, false, &[]),
        ],
    },
    EventType {
        subject: "repository",
        predicate: "created",
        version: "0.2.0",
        subject_type: "repository",
        content: &[
            text("name", true, true, &[]),
            text("owner", false, false, &[]),
            text("url", true, true, &[]),
            text("viewUrl", false, false, &[]),
        ],
    },
    EventType {
        subject: "repository",
        predicate: "deleted",
        version: "0.2.0",
        subject_type: "repository",
        content: &[
            text("name", false, false, &[]),
            text("owner", false, false, &[]),
            text("url", false, false, &[]),
            text("viewUrl", false, false, &[]),
        ],
    },
    EventType {
        subject: "repository",
        predicate: "modified",
        version: "0.2.0",
        subject_type: "repository",
        content: &[
            text("name", false, false, &[]),
            text("owner", false, false, &[]),
            text("url", false, false, &[]),
            text("viewUrl", false, false, &[]),
        ],
    },
    EventType {
        subject: "service",
        predicate: "deployed",
        version: "0.2.0",
        subject_type: "service",
        content: &[
            Field::Reference {
                name: "environment",
                required: true,
            },
            purl("artifactId", true, true),
        ],
    },
    EventType {
        subject: "service",
        predicate: "published",
        version: "0.2.0",
        subject_type: "service",
        content: &[Field::Reference {
            name: "environment",
            required: false,
        }],
    },
    EventType {
        subject: "service",
        predicate: "removed",
        version: "0.2.0",
        subject_type: "service",
        content: &[Field::Reference {
            name: "environment",
            required: false,
        }],
    },
    EventType {
        subject: "service",
        predicate: "rolledback",
        version: "0.2.0",
        subject_type: "service",
        content: &[
            Field::Reference {
                name: "environment",
                required: true,
            },
            purl("artifactId", true, true),
        ],
    },
    EventType {
        subject: "service",
        predicate: "upgraded",
        version: "0.2.0",
        subject_type: "service",
        content: &[
            Field::Reference {
                name: "environment",
                required: true,
            },
            purl("artifactId", true, true),
        ],
    },
    EventType {
        subject: "taskrun",
        predicate: "finished",
        version: "0.2.0",
        subject_type: "taskRun",
        content: &[
            text("taskName", false, false, &[]),
            text("url", false, false, &[]),
            Field::Reference {
                name: "pipelineRun",
                required: false,
            },
            text("outcome", false, false, &[]),
            text("errors", false, false, &[]),
        ],
    },
    EventType {
        subject: "taskrun",
        predicate: "started",
        version: "0.2.0",
        subject_type: "taskRun",
        content: &[
            text("taskName", false, false, &[]),
            text("url", false, false, &[]),
            Field::Reference {
                name: "pipelineRun",
                required: false,
            },
        ],
    },
    EventType {
        subject: "testcaserun",
        predicate: "finished",
        version: "0.2.0",
        subject_type: "testCaseRun",
        content: &[
            text("outcome", true, false, &["pass", "fail", "cancel", "error"]),
            text(
                "severity",
                false,
                false,
                &["low", "medium", "high", "critical"],
            ),
            text("reason", false, false, &[]),
            Field::Reference {
                name: "environment",
                required: true,
            },
            Field::Reference {
                name: "testSuiteRun",
                required: false,
            },
            Field::Object {
                name: "testCase",
                required: false,
                fields: &[
                    text("id", true, true, &[]),
                    text("version", false, false, &[]),
                    text("name", false, false, &[]),
                    text(
                        "type",
                        false,
                        false,
                        &[
                            "performance",
                            "functional",
                            "unit",
                            "security",
                            "compliance",
                            "integration",
                            "e2e",
                            "other",
                        ],
                    ),
                    text("uri", false, false, &[]),
                ],
            },
        ],
    },
    EventType {
        subject: "testcaserun",
        predicate: "queued",
        version: "0.2.0",
        subject_type: "testCaseRun",
        content: &[
            Field::Object {
                name: "trigger",
                required: false,
                fields: &[
                    text(
                        "type",
                        false,
                        false,
                        &["manual", "pipeline", "event", "schedule", "other"],
                    ),
                    text("uri", false, false, &[]),
                ],
            },
            Field::Reference {
                name: "environment",
                required: true,
            },
            Field::Reference {
                name: "testSuiteRun",
                required: false,
            },
            Field::Object {
                name: "testCase",
                required: false,
                fields: &[
                    text("id", true, true, &[]),
                    text("version", false, false, &[]),
                    text("name", false, false, &[]),
                    text(
                        "type",
                        false,
                        false,
                        &[
                            "performance",
                            "functional",
                            "unit",
                            "security",
                            "compliance",
                            "integration",
                            "e2e",
                            "other",
                        ],
                    ),
                    text("uri", false, false, &[]),
                ],
            },
        ],
    },
    EventType {
        subject: "testcaserun",
        predicate: "skipped",
        version: "0.1.0",
        subject_type: "testCaseRun",
        content: &[
            text("reason", false, false, &[]),
            Field::Reference {
                name: "environment",
                required: false,
            },
            Field::Reference {
                name: "testSuiteRun",
                required: false,
            },
            Field::Object {
                name: "testCase",
                required: false,
                fields: &[
                    text("id", true, true, &[]),
                    text("version", false, false, &[]),
                    text("name", false, false, &[]),
                    text(
                        "type",
                        false,
                        false,
                        &[
                            "performance",
                            "functional",
                            "unit",
                            "security",
                            "compliance",
                            "integration",
                            "e2e",
                            "other",
                        ],
                    ),
                    text("uri", false, false, &[]),
                ],
            },
        ],
    },
    EventType {
        subject: "testcaserun",
        predicate: "started",
        version: "0.2.0",
        subject_type: "testCaseRun",
        content: &[
            Field::Object {
                name: "trigger",
                required: false,
                fields: &[
                    text(
                        "type",
                        false,
                        false,
                        &["manual", "pipeline", "event", "schedule", "other"],
                    ),
                    text("uri", false, false, &[]),
                ],
            },
            Field::Reference {
                name: "environment",
                required: true,
            },
            Field::Reference {
                name: "testSuiteRun",
                required: false,
            },
            Field::Object {
                name: "testCase",
                required: false,
                fields: &[
                    text("id", true, true, &[]),
                    text("version", false, false, &[]),
                    text("name", false, false, &[]),
                    text(
                        "type",
                        false,
                        false,
                        &[
                            "performance",
                            "functional",
                            "unit",
                            "security",
                            "compliance",
                            "integration",
                            "e2e",
                            "other",
                        ],
                    ),
                    text("uri", false, false, &[]),
                ],
            },
        ],
    },
    EventType {
        subject: "testoutput",
        predicate: "published",
        version: "0.2.0",
        subject_type: "testOutput",
        content: &[
            text(
                "outputType",
                true,
                false,
                &["report", "video", "image", "log", "other"],
            ),
            text("format", true, false, &[]),
            text("uri", false, false, &[]),
            Field::Reference {
                name: "testCaseRun",
                required: false,
            },
        ],
    },
    EventType {
        subject: "testsuiterun",
        predicate: "finished",
        version: "0.2.0",
        subject_type: "testSuiteRun",
        content: &[
            Field::Reference {
                name: "environment",
                required: true,
            },
            Field::Object {
                name: "testSuite",
                required: false,
                fields: &[
                    text("id", true, true, &[]),
                    text("version", false, false, &[]),
                    text("name", false, false, &[]),
                    text("uri", false, false, &[]),
                ],
            },
            text("outcome", true, false, &["pass", "fail", "cancel", "error"]),
            text(
                "severity",
                false,
                false,
                &["low", "medium", "high", "critical"],
            ),
            text("reason", false, false, &[]),
        ],
    },
    EventType {
        subject: "testsuiterun",
        predicate: "queued",
        version: "0.2.0",
        subject_type: "testSuiteRun",
        content: &[
            Field::Object {
                name: "trigger",
                required: false,
                fields: &[
                    text(
                        "type",
                        false,
                        false,
                        &["manual", "pipeline", "event", "schedule", "other"],
                    ),
                    text("uri", false, false, &[]),
                ],
            },
            Field::Reference {
                name: "environment",
                required: true,
            },
            Field::Object {
                name: "testSuite",
                required: false,
                fields: &[
                    text("id", true, true, &[]),
                    text("version", false, false, &[]),
                    text("name", false, false, &[]),
                    text("url", false, false, &[]),
                ],
            },
        ],
    },
    EventType {
        subject: "testsuiterun",
        predicate: "started",
        version: "0.2.0",
        subject_type: "testSuiteRun",
        content: &[
            Field::Object {
                name: "trigger",
                required: false,
                fields: &[
                    text(
                        "type",
                        false,
                        false,
                        &["manual", "pipeline", "event", "schedule", "other"],
                    ),
                    text("uri", false, false, &[]),
                ],
            },
            Field::Reference {
                name: "environment",
                required: true,
            },
            Field::Object {
                name: "testSuite",
                required: false,
                fields: &[
                    text("id", true, true, &[]),
                    text("version", false, false, &[]),
                    text("name", false, false, &[]),
                    text("uri", false, false, &[]),
                ],
            },
        ],
    },
    EventType {
        subject: "ticket",
        predicate: "closed",
        version: "0.1.0",
        subject_type: "ticket",
        content: &[
            text("summary", false, false, &[]),
            text("ticketType", false, false, &[]),
            text("group", false, false, &[]),
            text("creator", false, true, &[]),
            Field::Texts("assignees"),
            text("priority", false, false, &[]),
            Field::Texts("labels"),
            text("milestone", false, false, &[]),
            text("uri", true, true, &[]),
            text("resolution", true, true, &[]),
            text("updatedBy", false, false, &[]),
        ],
    },
    EventType {
        subject: "ticket",
        predicate: "created",
        version: "0.1.0",
        subject_type: "ticket",
        content: &[
            text("summary", true, false, &[]),
            text("ticketType", false, false, &[]),
            text("group", false, false, &[]),
            text("creator", true, true, &[]),
            Field::Texts("assignees"),
            text("priority", false, false, &[]),
            Field::Texts("labels"),
            text("milestone", false, false, &[]),
            text("uri", true, true, &[]),
        ],
    },
    EventType {
        subject: "ticket",
        predicate: "updated",
        version: "0.1.0",
        subject_type: "ticket",
        content: &[
            text("summary", false, false, &[]),
            text("ticketType", false, false, &[]),
            text("group", false, false, &[]),
            text("creator", false, true, &[]),
            Field::Texts("assignees"),
            text("priority", false, false, &[]),
            Field::Texts("labels"),
            text("milestone", false, false, &[]),
            text("updatedBy", false, false, &[]),
            text("uri", true, true, &[]),
        ],
    },
];

/// The type `dev.cdevents.<subject>.<predicate>.*` names, if the SDK
/// knows one.
pub(super) fn lookup(subject: &str, predicate: &str) -> Option<&'static EventType> {
    EVENT_TYPES
        .iter()
        .find(|t| t.subject == subject && t.predicate == predicate)
}
