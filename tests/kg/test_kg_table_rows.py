"""Table rows whose first cell does not name one entity: repeated names and row numbers."""
from kg.table import table_triples


def rows(text):
    return [(t.subject, t.relation, t.object) for t in table_triples(text)]


def test_values_of_rows_sharing_their_first_cell_are_qualified_by_the_rows_names():
    text = ("Office: Munich | Department: G&A | Headcount: 48\n"
            "Office: Munich | Department: Sales | Headcount: 52\n"
            "Office: Austin | Department: Support | Headcount: 34")
    assert rows(text) == [
        ("Munich", "Department", "G&A"), ("Munich", "Headcount (G&A)", "48"),
        ("Munich", "Department", "Sales"), ("Munich", "Headcount (Sales)", "52"),
        ("Austin", "Department", "Support"), ("Austin", "Headcount", "34"),
    ]


def test_a_row_number_does_not_name_the_row_its_first_name_does():
    text = "#,Action,Owner,Due\n1,Rotate the broker certificates,Jan Richter,4 Sep 2026\n2,Add expiry alerts,Nadia Petrova,11 Sep 2026"
    assert rows(text) == [
        ("Rotate the broker certificates", "Owner", "Jan Richter"), ("Rotate the broker certificates", "Due", "4 Sep 2026"),
        ("Add expiry alerts", "Owner", "Nadia Petrova"), ("Add expiry alerts", "Due", "11 Sep 2026"),
    ]
