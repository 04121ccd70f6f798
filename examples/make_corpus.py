"""Write the bundled sample corpus: the documents of Kestrel Robotics (红隼机器人), a fictional company.

Why a generator: the demo, the tests, the benchmark and the labelled evaluation set all need real files in
every format Zhiku ingests, and binary formats (DOCX, PPTX, XLSX, PDF) must not be committed. Text documents
live as templates under ``examples/sources/`` and are copied; everything else is built here from the tables
below, so people, offices, products and prices are written once and agree across documents.

Contract: ``build(out_dir)`` writes every document listed in ``DOCUMENTS`` plus ``zhiku-acl.toml`` and returns
the written paths (ACL file last). Output is byte-for-byte deterministic: zip members and office core
properties carry fixed timestamps, the e-mail has a fixed boundary, the PDF has no creation date, and every
file's mtime is the document's own date. The facts an evaluation set can ask about are listed in
``examples/corpus_facts.md``.

Usage: ``python examples/make_corpus.py [OUT_DIR] [--scans]`` (default ``examples/corpus``). ``--scans`` also
writes the scanned documents of ``examples/scans.py`` (images and image-only PDFs with exact ground truth)
under ``OUT_DIR/scans/``; they stay out of the default corpus so its documents and labels are unchanged.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import re
import shutil
import textwrap
import zipfile
from collections.abc import Callable
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

SOURCES = Path(__file__).resolve().parent / "sources"
DEFAULT_OUT = Path(__file__).resolve().parent / "corpus"
FIXED_ZIP_TIME = (2026, 11, 1, 9, 0, 0)
FIXED_CORE_TIME = "2026-11-01T09:00:00Z"
DOMAIN = "kestrel-robotics.com"
OOXML = {".docx", ".pptx", ".xlsx"}

ACL = """\
# Access groups per path glob (relative to this folder). Documents matching no glob are visible to everyone.
"hr/**" = ["hr"]
"finance/**" = ["finance", "executives"]
"sales/**" = ["sales", "executives"]
"engineering/**" = ["engineering"]
"""

# ---------------------------------------------------------------------------------------------------------
# Shared facts: people, products, prices. Every generated document reads these tables.
# ---------------------------------------------------------------------------------------------------------

# name, title, department, office, manager, phone extension
PEOPLE = [
    ("Anna Weber", "Chief Executive Officer and co-founder", "Management", "Munich", "", "1000"),
    ("Li Wei (李伟)", "Chief Technology Officer and co-founder; head of the Shanghai office", "Engineering",
     "Shanghai", "Anna Weber", "2000"),
    ("Marcus Hale", "Chief Financial Officer", "Finance", "Munich", "Anna Weber", "1100"),
    ("Sophie Laurent", "Chief People Officer", "Human Resources", "Munich", "Anna Weber", "1200"),
    ("Priya Raman", "VP Sales; head of the Austin office", "Sales", "Austin", "Anna Weber", "3000"),
    ("Hannah Vogel", "General Counsel and Compliance Officer", "Legal", "Munich", "Anna Weber", "1300"),
    ("Tomasz Nowak", "Chief Information Security Officer", "IT and Security", "Munich", "Li Wei", "1400"),
    ("Martin Gruber", "IT Helpdesk Lead", "IT and Security", "Munich", "Tomasz Nowak", "4357"),
    ("Nadia Petrova", "SRE Manager, Nest cloud", "Engineering", "Munich", "Li Wei", "1510"),
    ("Jan Richter", "Site Reliability Engineer", "Engineering", "Munich", "Nadia Petrova", "1514"),
    ("Jonas Becker", "Product Manager, Nest and Talon T7", "Product", "Munich", "Li Wei", "1520"),
    ("Chen Jie (陈杰)", "Engineering Lead, K5 Lift", "Engineering", "Shanghai", "Li Wei", "2010"),
    ("Sun Li (孙丽)", "Firmware Engineer", "Engineering", "Shanghai", "Chen Jie", "2015"),
    ("Zhang Min (张敏)", "HR Manager China", "Human Resources", "Shanghai", "Sophie Laurent", "2100"),
    ("Liu Yang (刘洋)", "Office Manager Shanghai", "Administration", "Shanghai", "Zhang Min", "2101"),
    ("Wang Fang (王芳)", "Finance Controller China", "Finance", "Shanghai", "Marcus Hale", "2200"),
    ("Zhao Lei (赵磊)", "Sales Director China", "Sales", "Shanghai", "Priya Raman", "2300"),
    ("Huang Tao (黄涛)", "IT Support Engineer", "IT and Security", "Shanghai", "Martin Gruber", "2357"),
    ("Felix Hoffmann", "Sales Director EMEA", "Sales", "Munich", "Priya Raman", "1600"),
    ("Lukas Schmidt", "Head of Customer Support", "Customer Support", "Munich", "Priya Raman", "1700"),
    ("Laura Fischer", "Head of Communications", "Communications", "Munich", "Anna Weber", "1310"),
    ("Emily Carter", "Sales Director North America", "Sales", "Austin", "Priya Raman", "3100"),
    ("Rachel Ortiz", "HR Business Partner", "Human Resources", "Austin", "Sophie Laurent", "3200"),
    ("Kevin Walsh", "IT Support Engineer", "IT and Security", "Austin", "Martin Gruber", "3357"),
    ("Daniel Kim", "Software Engineer, Nest", "Engineering", "Austin", "Nadia Petrova", "3410"),
]

OFFICE_PHONE = {"Munich": "+49 89 5550", "Shanghai": "+86 21 5080", "Austin": "+1 512 555"}

PRODUCTS = [
    {
        "sku": "KR-K2-STD", "name": "K2 Courier", "type": "Autonomous mobile robot (tote and cart transport)",
        "status": "available", "launched": "2021-04-12", "product_owner": "Jonas Becker",
        "specs": {"payload_kg": 150, "max_speed_m_s": 1.8, "dimensions_mm": "780 x 560 x 320", "weight_kg": 68,
                  "battery": "48 V 40 Ah LFP", "runtime_h": 10, "charge_0_80_min": 45, "ip_rating": "IP54",
                  "navigation": "LiDAR SLAM with visual assistance", "positioning_accuracy_mm": 10},
        "variants": ["K2 Courier Cold (-25 C freezer version, SKU KR-K2-COLD)"],
        "designed_in": "Shanghai",
    },
    {
        "sku": "KR-K5-LIFT", "name": "K5 Lift", "type": "Heavy-payload autonomous mobile robot with lifting top",
        "status": "pilot", "launched": "2027-01-15", "product_owner": "Jonas Becker",
        "engineering_lead": "Chen Jie",
        "specs": {"payload_kg": 1000, "lift_height_mm": 60, "max_speed_m_s": 1.5,
                  "dimensions_mm": "1450 x 950 x 360", "weight_kg": 310,
                  "battery": "Voltcell VC-105, 48 V 105 Ah LFP", "runtime_h": 8, "charge_0_80_min": 60,
                  "ip_rating": "IP54", "navigation": "LiDAR SLAM, dual SICK nanoScan3 safety scanners",
                  "safety_standard": "ISO 3691-4, PL d"},
        "designed_in": "Shanghai",
    },
    {
        "sku": "KR-T7-ARM", "name": "Talon T7", "type": "Six-axis collaborative robot arm",
        "status": "available", "launched": "2024-05-06", "product_owner": "Jonas Becker",
        "specs": {"payload_kg": 7, "reach_mm": 850, "axes": 6, "repeatability_mm": 0.03, "weight_kg": 22,
                  "ip_rating": "IP54", "safety_standard": "ISO 10218-1"},
        "designed_in": "Munich",
    },
    {
        "sku": "KR-NEST-SUB", "name": "Nest", "type": "Fleet management software (SaaS)",
        "status": "available", "launched": "2021-04-12", "product_owner": "Jonas Becker",
        "specs": {"current_version": "4.2", "released": "2026-10-12", "max_robots_per_site": 500,
                  "regions": ["Frankfurt", "Shanghai", "Dallas"], "uptime_sla_percent": 99.5,
                  "min_robot_firmware": "3.8"},
        "designed_in": "Munich and Austin",
    },
]

# sku, product, list EUR, list USD, list CNY, unit, warranty months, lead time weeks
PRICES = [
    ("KR-K2-STD", "K2 Courier", "28500", "31000", "219000", "robot", "24", "6"),
    ("KR-K2-COLD", "K2 Courier Cold (-25 C)", "33900", "36900", "259000", "robot", "24", "8"),
    ("KR-K5-LIFT", "K5 Lift (orders from 15 Jan 2027)", "64000", "69500", "489000", "robot", "24", "12"),
    ("KR-T7-ARM", "Talon T7 collaborative arm", "24900", "27000", "189000", "robot", "12", "4"),
    ("KR-CHG-DOCK", "Charging dock (K2 and K5)", "2400", "2600", "18500", "dock", "24", "4"),
    ("KR-NEST-SUB", "Nest fleet manager subscription", "95", "105", "690", "robot per month", "", ""),
    ("KR-CARE-PLUS", "Care Plus service (12% of list price per year)", "", "", "", "robot per year", "", ""),
    ("KR-INST-DAY", "Installation and training", "1600", "1800", "11000", "engineer day", "", ""),
]

# grade, title, Germany EUR min-max, US USD min-max, China CNY min-max (annual base salary)
SALARY_BANDS = [
    ("E1", "Engineer I", "52000", "64000", "85000", "105000", "220000", "320000"),
    ("E2", "Engineer II", "62000", "78000", "105000", "130000", "300000", "430000"),
    ("E3", "Senior Engineer", "76000", "95000", "130000", "165000", "400000", "580000"),
    ("E4", "Staff Engineer / Engineering Lead", "92000", "118000", "160000", "205000", "520000", "760000"),
    ("M1", "Manager", "85000", "110000", "140000", "180000", "450000", "650000"),
    ("M2", "Director", "110000", "145000", "180000", "240000", "620000", "900000"),
    ("S1", "Account Executive (base; plus 40% on-target commission)", "60000", "80000", "90000",
     "120000", "250000", "380000"),
]

# department, owner, Q1..Q4 (EUR thousand)
BUDGET = [
    ("Research and development", "Li Wei", 5300, 5500, 5700, 6000),
    ("Sales and marketing", "Priya Raman", 3300, 3500, 3600, 3800),
    ("Operations and manufacturing", "Marcus Hale", 2100, 2200, 2300, 2500),
    ("Customer support", "Lukas Schmidt", 800, 850, 850, 900),
    ("General and administrative", "Marcus Hale", 1650, 1700, 1700, 1750),
]

# office, department, headcount 31 Dec 2025, planned 31 Dec 2026, open roles on 1 Oct 2026
HEADCOUNT = [
    ("Munich", "Engineering and product", 78, 86, 5),
    ("Munich", "Sales, support and marketing", 52, 58, 4),
    ("Munich", "G&A", 48, 50, 0),
    ("Shanghai", "R&D", 112, 130, 8),
    ("Shanghai", "Sales, support and G&A", 38, 40, 1),
    ("Austin", "Sales and support", 34, 44, 6),
    ("Austin", "Nest engineering", 22, 30, 4),
]


# ---------------------------------------------------------------------------------------------------------
# Builders: text and e-mail builders return the content; office and PDF builders write to a path.
# ---------------------------------------------------------------------------------------------------------

def _email_of(name: str) -> str:
    plain = name.split(" (")[0].lower().replace(" ", ".")
    return f"{plain}@{DOMAIN}"


def office_directory() -> str:
    rows = [["Name", "Title", "Department", "Office", "Reports to", "E-mail", "Phone"]]
    for name, title, dept, office, manager, ext in PEOPLE:
        rows.append([name, title, dept, office, manager, _email_of(name), f"{OFFICE_PHONE[office]} {ext}"])
    return _csv(rows)


def price_list() -> str:
    header = ["SKU", "Product", "List price EUR", "List price USD", "List price CNY (incl. 13% VAT)", "Unit",
              "Warranty (months)", "Lead time (weeks)"]
    return _csv([header, *PRICES])


def salary_bands() -> str:
    header = ["Grade", "Title", "Germany min EUR", "Germany max EUR", "US min USD", "US max USD",
              "China min CNY", "China max CNY"]
    return _csv([header, *SALARY_BANDS])


def product_catalogue() -> str:
    record = {"company": "Kestrel Robotics GmbH", "catalogue": "Product catalogue 2026", "updated": "2026-10-15",
              "products": PRODUCTS}
    return json.dumps(record, ensure_ascii=False, indent=2) + "\n"


def _csv(rows: list) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


LEDGERLY_GUIDE = """\
LEDGERLY QUICK START — Kestrel Robotics
Version 1.0, 20 October 2026, Finance Operations

1. Sign in at kestrel.ledgerly.app with your company account (YubiKey required).
2. Install the Ledgerly mobile app and photograph each receipt right after paying; the app reads amount,
   date and VAT automatically.
3. Kestrel Visa card transactions appear within 24 hours; attach the receipt to each one.
4. Group expenses of one trip into a report and submit it within 30 days of the end of the trip.
5. Approval follows the Travel and Expenses Policy: line manager up to 2,000 EUR, department head up to
   5,000 EUR, the CFO above 5,000 EUR.
6. Approved reports are paid with the next monthly payroll.
Help: finance-ops@kestrel-robotics.com (China: Wang Fang, wang.fang@kestrel-robotics.com)
"""


def ledgerly_email() -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = "Marcus Hale <marcus.hale@kestrel-robotics.com>"
    msg["To"] = "All staff <all-staff@kestrel-robotics.com>"
    msg["Cc"] = "Wang Fang <wang.fang@kestrel-robotics.com>"
    msg["Subject"] = "Expense claims move to Ledgerly on 1 November 2026"
    msg["Date"] = "Tue, 20 Oct 2026 08:30:00 +0200"
    msg["Message-ID"] = "<20261020083000.ledgerly@kestrel-robotics.com>"
    msg.set_content("""\
Dear colleagues,

from 1 November 2026 all expense claims are submitted in Ledgerly, which replaces ExpensePoint.

What changes:
- ExpensePoint becomes read-only on 31 October 2026 at 18:00 CET. Please submit all open claims there by then.
- From 1 November, use Ledgerly on the web (kestrel.ledgerly.app) or the Ledgerly mobile app, which scans
  receipts automatically.
- The rules do not change: the Travel and Expenses Policy (version 3.2) still applies, including the hotel
  caps (for example 180 EUR per night in Europe) and the approval limits (above 5,000 EUR I approve myself).

Training sessions (45 minutes, also recorded):
- Munich: Tuesday 27 October, 10:00 CET, room "Zugspitze"
- Shanghai: Wednesday 28 October, 14:00 CST, room "Huangpu" (黄浦) - in Chinese, with Wang Fang
- Austin: Wednesday 28 October, 09:00 CT, room "Colorado"

Questions: finance-ops@kestrel-robotics.com. In China, please contact Wang Fang, our Finance Controller
China, directly.

The attached quick start guide has the six steps you need.

Best regards,
Marcus Hale
Chief Financial Officer, Kestrel Robotics GmbH
Leopoldstrasse 210, 80807 Munich, Germany
""")
    msg.add_attachment(LEDGERLY_GUIDE, subtype="plain", filename="ledgerly_quickstart.txt")
    msg.set_boundary("==kestrel-ledgerly-boundary-0001==")
    return msg.as_bytes()


def nordhafen_contract(path: Path) -> None:
    """Master supply agreement (DOCX): headings, numbered clauses and a price table."""
    from docx import Document

    doc = Document()
    doc.core_properties.title = "Master Supply Agreement KR-2026-0417"
    doc.core_properties.author = "Hannah Vogel"
    doc.add_heading("Master Supply Agreement No. KR-2026-0417", level=0)
    doc.add_paragraph(
        "This Master Supply Agreement (the \"Agreement\") is made on 30 September 2026 between Kestrel Robotics "
        "GmbH, Leopoldstraße 210, 80807 Munich, Germany, represented by its CEO Dr. Anna Weber (\"Kestrel\"), and "
        "Nordhafen Logistik GmbH, Am Sandtorkai 50, 20457 Hamburg, Germany, represented by its Managing Director "
        "Katrin Albers (\"Customer\").")
    sections = [
        ("1. Subject matter",
         "Kestrel supplies 40 K2 Courier autonomous mobile robots, the Nest fleet management subscription for "
         "these robots for 36 months, installation and training, and the Care Plus service for 3 years, for the "
         "Customer's sites in Hamburg-Waltershof and Bremen."),
        ("2. Prices",
         "The Customer receives a discount of 10% on the K2 Courier list price of EUR 28,500, i.e. EUR 25,650 per "
         "robot, and a Nest price of EUR 85 per robot per month instead of the list price of EUR 95. All prices "
         "are in euros and exclude VAT."),
    ]
    for heading, text in sections:
        doc.add_heading(heading, level=1)
        doc.add_paragraph(text)
    table = doc.add_table(rows=1, cols=5)
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, ["Item", "Quantity", "Unit price (EUR)", "Term", "Total (EUR)"]):
        cell.text = text
    for row in [
        ("K2 Courier robot (KR-K2-STD)", "40", "25,650", "one-off", "1,026,000"),
        ("Nest subscription (KR-NEST-SUB)", "40", "85 per month", "36 months", "122,400"),
        ("Installation and training", "30 engineer days", "1,600", "one-off", "48,000"),
        ("Care Plus service", "40", "1,368 per year", "3 years", "164,160"),
        ("Total contract value", "", "", "", "1,360,560"),
    ]:
        for cell, text in zip(table.add_row().cells, row):
            cell.text = text
    clauses = [
        ("3. Delivery",
         "20 robots are delivered to the Hamburg-Waltershof site by 15 November 2026 and 20 robots to the Bremen "
         "site by 31 January 2027. Delay of more than 14 days entitles the Customer to a penalty of 0.5% of the "
         "value of the delayed robots per week, capped at 5%."),
        ("4. Payment terms",
         "30% of the hardware price is invoiced on signing, 60% on delivery and 10% on acceptance. Nest and Care "
         "Plus are invoiced quarterly in advance. Invoices are payable within 45 days."),
        ("5. Service levels",
         "Kestrel guarantees a monthly availability of the Nest service of 99.5%. If availability falls below this "
         "level, the Customer receives a service credit of 10% of the monthly Nest fee for each started 0.5 "
         "percentage point below 99.5%, up to 50% of the monthly fee. Care Plus includes a 4-hour on-site "
         "response time on working days in Germany."),
        ("6. Warranty",
         "The warranty for the robots is 24 months from acceptance. Batteries are covered for 3,000 cycles or "
         "24 months, whichever comes first."),
        ("7. Liability",
         "Kestrel's total liability under this Agreement is limited to 100% of the total contract value, except "
         "for intent, gross negligence and injury to life, body or health."),
        ("8. Contacts",
         "Kestrel's account manager for the Customer is Felix Hoffmann, Sales Director EMEA. Support requests go to "
         "the Kestrel Customer Support team led by Lukas Schmidt. Contract questions go to Hannah Vogel, General "
         "Counsel."),
        ("9. Term and governing law",
         "The Agreement runs until 31 January 2030. It is governed by German law; the courts of Munich have "
         "exclusive jurisdiction."),
    ]
    for heading, text in clauses:
        doc.add_heading(heading, level=1)
        doc.add_paragraph(text)
    doc.add_heading("Signatures", level=1)
    doc.add_paragraph("For Kestrel Robotics GmbH: Dr. Anna Weber, CEO — Munich, 30 September 2026")
    doc.add_paragraph("For Nordhafen Logistik GmbH: Katrin Albers, Managing Director — Hamburg, 30 September 2026")
    doc.save(path)


def shanghai_rd_report(path: Path) -> None:
    """Chinese quarterly report (DOCX) of the Shanghai R&D centre."""
    from docx import Document

    doc = Document()
    doc.core_properties.title = "2026年第三季度上海研发中心工作报告"
    doc.core_properties.author = "李伟"
    doc.add_heading("2026年第三季度上海研发中心工作报告", level=0)
    doc.add_paragraph("报告人：李伟（首席技术官、上海办公室负责人） 报告日期：2026年10月9日 报送：Anna Weber（首席执行官）")
    doc.add_heading("一、总体情况", level=1)
    doc.add_paragraph(
        "截至2026年9月30日，上海研发中心共有员工160人，其中研发人员118人。第三季度完成了 Nest 4.2 导航模块开发、"
        "K5 Lift 电池方案变更以及 K2 Courier 固件3.8的发布。根据C轮融资计划，上海研发中心将在2027年底前扩充至220人。")
    doc.add_heading("二、重点项目进展", level=1)
    table = doc.add_table(rows=1, cols=4)
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, ["项目", "负责人", "状态", "说明"]):
        cell.text = text
    for row in [
        ("K5 Lift 整机开发", "陈杰", "延期", "电池供应商改为 Voltcell，发布日期推迟至2027年1月15日"),
        ("VC-105 电池管理系统对接", "孙丽", "进行中", "计划10月15日完成"),
        ("Nest 4.2 导航与交通管理", "李伟", "已完成", "10月12日发布，单站点最多支持500台机器人"),
        ("K2 Courier 固件3.8", "陈杰", "已完成", "修复电量显示为0%的问题（NEST-2231）"),
        ("晨曦冷链 K5 Lift 试点", "赵磊", "准备中", "10月20日在临港仓库启动，6台机器人"),
    ]:
        for cell, text in zip(table.add_row().cells, row):
            cell.text = text
    doc.add_heading("三、预算执行", level=1)
    doc.add_paragraph(
        "上海研发中心2026年研发预算为人民币5,200万元，前三季度实际支出人民币3,850万元，执行率74%。"
        "VC-105 电池首批采购300套，金额人民币294万元，已由首席财务官 Marcus Hale 批准。")
    doc.add_heading("四、知识产权", level=1)
    doc.add_paragraph("第三季度新申请发明专利12件，其中与 K5 Lift 举升机构相关的5件；累计授权专利达到47件。")
    doc.add_heading("五、第四季度计划", level=1)
    for item in [
        "完成 K5 Lift 的 ISO 3691-4 认证（TÜV SÜD，预计12月10日）。",
        "招聘8名工程师（固件3名、导航3名、测试2名），由张敏负责。",
        "支持晨曦冷链试点，达到每小时48托的搬运目标。",
        "准备 Nest 4.3（计划2027年1月25日发布）的多站点调度功能。",
    ]:
        doc.add_paragraph(item, style="List Number")
    doc.save(path)


def quarterly_review_deck(path: Path) -> None:
    """Q3 2026 business review (PPTX): a title slide, then bullet slides and one table slide (rows of tuples)."""
    from pptx import Presentation

    prs = Presentation()
    prs.core_properties.title = "Q3 2026 Business Review"
    prs.core_properties.author = "Marcus Hale"
    title = prs.slides.add_slide(prs.slide_layouts[0])
    title.shapes.title.text = "Q3 2026 Business Review"
    title.placeholders[1].text = "Kestrel Robotics · Leadership team · 6 October 2026 · Marcus Hale, CFO"

    slides = [
        ("Q3 2026 highlights", [
            "Revenue EUR 21.4 million, +31% year on year; gross margin 41.2%",
            "Series C of EUR 48 million closed on 8 September 2026 (lead: Alpenblick Ventures)",
            "Cash at 30 September 2026: EUR 57.3 million",
            "Largest order of the quarter: Nordhafen Logistik, 40 K2 Courier robots, EUR 1.36 million",
            "Nest EU outage on 21 August: 2 h 47 min, 23 sites, EUR 21,300 service credits",
        ]),
        ("Revenue and units by region, Q3 2026", [
            ("Region", "Revenue (EUR m)", "Growth vs Q3 2025", "K2 Courier units", "Talon T7 units", "Regional lead"),
            ("EMEA", "9.8", "+24%", "268", "112", "Felix Hoffmann"),
            ("China", "6.1", "+38%", "214", "61", "Zhao Lei"),
            ("North America", "5.5", "+36%", "130", "37", "Emily Carter"),
            ("Total", "21.4", "+31%", "612", "210", "Priya Raman"),
        ]),
        ("Product roadmap", [
            "Nest 4.2 released 12 October 2026: offline buffer, multi-floor maps, 500 robots per site",
            "K5 Lift general availability moved to 15 January 2027 (battery supplier change to Voltcell)",
            "K5 Lift pilot at Sunrise Cold Chain, Shanghai Lingang, from 20 October 2026 with 6 robots",
            "Nest 4.3 planned for 25 January 2027",
        ]),
        ("Risks", [
            "K5 Lift certification (ISO 3691-4, TÜV SÜD) must complete by 10 December 2026",
            "Battery supply: single source (Voltcell) until a second supplier is qualified in Q2 2027",
            "USD/EUR exchange rate: North America is 26% of revenue",
        ]),
        ("Q4 2026 priorities", [
            "Reach full-year revenue of EUR 86 million",
            "Deliver the first 20 Nordhafen robots by 15 November 2026",
            "Ledgerly roll-out on 1 November 2026; G&A hiring freeze until 31 December 2026",
            "Sign the lease for the Austin expansion (Suite 1500, 25 seats, from 1 February 2027)",
        ]),
    ]
    for heading, body in slides:
        if isinstance(body[0], tuple):
            _table_slide(prs, heading, body)
        else:
            _bullet_slide(prs, heading, body)
    prs.save(path)


def _table_slide(prs, heading: str, rows: list[tuple[str, ...]]) -> None:
    from pptx.util import Inches

    slide = prs.slides.add_slide(prs.slide_layouts[5])
    slide.shapes.title.text = heading
    shape = slide.shapes.add_table(len(rows), len(rows[0]), Inches(0.4), Inches(1.6), Inches(9.2), Inches(2.5))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            shape.table.cell(r, c).text = text


def _bullet_slide(prs, heading: str, bullets: list[str]) -> None:
    slide = prs.slides.add_slide(prs.slide_layouts[1])
    slide.shapes.title.text = heading
    body = slide.placeholders[1].text_frame
    body.text = bullets[0]
    for bullet in bullets[1:]:
        body.add_paragraph().text = bullet


def budget_workbook(path: Path) -> None:
    """FY2026 budget (XLSX) with two sheets, each a header row plus data rows."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.properties.creator = "Marcus Hale"
    wb.properties.title = "FY2026 budget"
    sheet = wb.active
    sheet.title = "Budget by department"
    sheet.append(["Department", "Budget owner", "Q1 (kEUR)", "Q2 (kEUR)", "Q3 (kEUR)", "Q4 (kEUR)",
                  "FY2026 total (kEUR)"])
    for dept, owner, *quarters in BUDGET:
        sheet.append([dept, owner, *quarters, sum(quarters)])
    sheet.append(["Total", "Marcus Hale", *(sum(row[i] for row in BUDGET) for i in range(2, 6)),
                  sum(sum(row[2:]) for row in BUDGET)])
    heads = wb.create_sheet("Headcount")
    heads.append(["Office", "Department", "Headcount 31 Dec 2025", "Planned 31 Dec 2026", "Open roles 1 Oct 2026"])
    for row in HEADCOUNT:
        heads.append(list(row))
    wb.save(path)


def datasheet_pdf(path: Path) -> None:
    """K5 Lift product data sheet (PDF, two pages, real text layer in a base-14 font)."""
    import matplotlib

    matplotlib.use("pdf")
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    k5 = next(p for p in PRODUCTS if p["sku"] == "KR-K5-LIFT")["specs"]
    pages = [
        ("K5 Lift — Product Data Sheet", [
            ("", "The K5 Lift is the heavy-payload autonomous mobile robot of Kestrel Robotics. It drives under "
                 "pallets, racks and roll cages, lifts them by up to 60 mm and moves loads of up to 1,000 kg "
                 "between receiving, storage and production areas without fixed guidance. The K5 Lift was "
                 "designed at the Kestrel R&D centre in Shanghai under engineering lead Chen Jie. General "
                 "availability: 15 January 2027; pilot installations run from October 2026."),
            # One paragraph of "name: value." sentences; short lines alone would be read as titles by parsers.
            ("Technical specifications", " ".join(line + "." for line in [
                f"Rated payload: {k5['payload_kg']:,} kg",
                f"Lift height: {k5['lift_height_mm']} mm (lifting time 3 s)",
                f"Maximum speed: {k5['max_speed_m_s']} m/s empty, 1.2 m/s loaded",
                f"Dimensions (L x W x H): {k5['dimensions_mm']} mm",
                f"Own weight: {k5['weight_kg']} kg",
                f"Battery: {k5['battery']}, swappable in under 5 minutes",
                f"Runtime: {k5['runtime_h']} hours; charging 0-80% in {k5['charge_0_80_min']} minutes",
                "Operating temperature: 0 to +40 C (cold-store version planned for 2027)",
                f"Protection class: {k5['ip_rating']}",
                f"Navigation and safety: {k5['navigation']}",
                f"Safety standard: {k5['safety_standard']}; emergency stop response 180 ms",
                "Positioning accuracy: +/- 10 mm at docking stations",
            ])),
        ]),
        ("K5 Lift — Operation, software and ordering", [
            ("Fleet software", "Every K5 Lift is managed by Nest, the Kestrel fleet management software. Nest 4.2 "
                               "(released 12 October 2026) plans lift and lower missions, pallet and rack "
                               "profiles and traffic for mixed fleets of K2 Courier and K5 Lift robots, up to 500 "
                               "robots per site. Minimum firmware: 3.9."),
            ("Safety", "Two SICK nanoScan3 safety laser scanners give 360 degree protective fields. Speed is "
                       "reduced automatically near people. The K5 Lift is certified to ISO 3691-4 by TUV SUD "
                       "(certificate expected on 10 December 2026) and reaches performance level PL d."),
            ("Service and warranty", "Warranty: 24 months; battery 3,000 cycles or 24 months. Care Plus service "
                                     "costs 12% of the list price per year and includes a 4-hour on-site response "
                                     "time on working days in Germany."),
            ("Ordering", "SKU KR-K5-LIFT. List price EUR 64,000 / USD 69,500 / CNY 489,000. Lead time: 12 "
                         "weeks. Charging dock KR-CHG-DOCK: EUR 2,400. Contact your Kestrel sales director: "
                         "Felix Hoffmann (EMEA), Zhao Lei (China), Emily Carter (North America)."),
            ("Manufacturer", "Kestrel Robotics GmbH, Leopoldstrasse 210, 80807 Munich, Germany. "
                             "www.kestrel-robotics.com. Document KR-DS-K5-EN, revision C, November 2026."),
        ]),
    ]
    with matplotlib.rc_context({"pdf.use14corefonts": True, "font.family": "sans-serif",
                                "font.sans-serif": ["Helvetica"]}):
        with PdfPages(path, metadata={"Title": "K5 Lift Product Data Sheet", "Author": "Kestrel Robotics",
                                      "CreationDate": None, "ModDate": None}) as pdf:
            for number, (title, sections) in enumerate(pages, start=1):
                fig = plt.figure(figsize=(8.27, 11.69))
                fig.text(0.08, 0.88, title, fontsize=18)
                y = 0.84
                for heading, body in sections:
                    if heading:
                        fig.text(0.08, y, heading, fontsize=13)
                        y -= 0.025
                    for paragraph in body.split("\n"):
                        # 12 pt steps for 10 pt text: pdfminer then joins the lines of a paragraph into one box.
                        for line in textwrap.wrap(paragraph, 95):
                            fig.text(0.08, y, line, fontsize=10)
                            y -= 12 / (11.69 * 72)
                        y -= 0.006
                    y -= 0.015
                fig.text(0.08, 0.04, f"Kestrel Robotics · K5 Lift data sheet · page {number} of {len(pages)}",
                         fontsize=8)
                pdf.savefig(fig)
                plt.close(fig)


# ---------------------------------------------------------------------------------------------------------
# The corpus: relative path -> (document date, writer). A writer of None copies sources/<same path>.
# ---------------------------------------------------------------------------------------------------------

Writer = Callable[[Path], None]


def _text(make: Callable[[], str]) -> Writer:
    return lambda path: path.write_text(make(), encoding="utf-8")


def _bytes(make: Callable[[], bytes]) -> Writer:
    return lambda path: path.write_bytes(make())


DOCUMENTS: dict[str, tuple[str, Writer | None]] = {
    "policies/travel_and_expenses_policy.md": ("2026-10-15", None),
    "policies/code_of_conduct.md": ("2026-01-12", None),
    "policies/it_security_policy.md": ("2026-07-01", None),
    "onboarding/onboarding_guide.md": ("2026-10-15", None),
    "company/about_kestrel.html": ("2026-09-10", None),
    "company/press_release_series_c.md": ("2026-09-08", None),
    "company/office_directory.csv": ("2026-10-01", _text(office_directory)),
    "it/helpdesk_faq.html": ("2026-08-03", None),
    "products/product_catalogue.json": ("2026-10-15", _text(product_catalogue)),
    "products/k5_lift_datasheet.pdf": ("2026-11-02", datasheet_pdf),
    "mail/2026-10-20_ledgerly_rollout.eml": ("2026-10-20", _bytes(ledgerly_email)),
    "meetings/2026-10-06_leadership_meeting.txt": ("2026-10-06", None),
    "hr/leave_policy.md": ("2026-10-07", None),
    "hr/salary_bands_2026.csv": ("2026-01-15", _text(salary_bands)),
    "finance/fy2026_budget.xlsx": ("2026-01-20", budget_workbook),
    "finance/q3_2026_business_review.pptx": ("2026-10-06", quarterly_review_deck),
    "engineering/postmortem_2026-08-21_nest_outage.md": ("2026-08-28", None),
    "engineering/nest_4_2_release_notes.md": ("2026-10-12", None),
    "engineering/2026-09-29_architecture_sync.txt": ("2026-09-29", None),
    "sales/nordhafen_master_supply_agreement.docx": ("2026-09-30", nordhafen_contract),
    "sales/price_list_2026.csv": ("2026-01-05", _text(price_list)),
    "sales/customer_case_study_bluebonnet.md": ("2026-10-20", None),
    "zh/shanghai_office_rules.md": ("2026-03-01", None),
    "zh/2026-09-15_k5_project_meeting.txt": ("2026-09-15", None),
    "zh/new_employee_faq.html": ("2026-10-10", None),
    "zh/k2_courier_product_intro.md": ("2026-06-01", None),
    "zh/k5_pilot_plan_sunrise_cold_chain.md": ("2026-10-08", None),
    "zh/q3_2026_shanghai_rd_report.docx": ("2026-10-09", shanghai_rd_report),
}


def build(out_dir: Path) -> list[Path]:
    """Write the whole corpus under ``out_dir`` (created if missing) and return the written files."""
    out_dir = Path(out_dir)
    written = []
    for relative, (day, writer) in DOCUMENTS.items():
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if writer is None:
            shutil.copyfile(SOURCES / relative, path)
        else:
            writer(path)
        if path.suffix in OOXML:
            _normalise_zip(path)
        _set_mtime(path, day)
        written.append(path)
    acl = out_dir / "zhiku-acl.toml"
    acl.write_text(ACL, encoding="utf-8")
    _set_mtime(acl, "2026-11-01")
    written.append(acl)
    return written


def _normalise_zip(path: Path) -> None:
    """Rewrite an OOXML zip with fixed member timestamps and fixed core-property dates (determinism)."""
    with zipfile.ZipFile(path) as source:
        members = [(info.filename, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in members:
            if name == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>" + FIXED_CORE_TIME.encode(),
                              data)
            info = zipfile.ZipInfo(name, date_time=FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(info, data)


def _set_mtime(path: Path, day: str) -> None:
    stamp = datetime.fromisoformat(day).replace(hour=9, tzinfo=timezone.utc).timestamp()
    os.utime(path, (stamp, stamp))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the Kestrel Robotics sample corpus (28 documents).")
    parser.add_argument("out_dir", nargs="?", type=Path, default=DEFAULT_OUT,
                        help="folder to write into (default: examples/corpus)")
    parser.add_argument("--scans", action="store_true",
                        help="also write the scanned documents (OCR test set) under OUT_DIR/scans/")
    args = parser.parse_args(argv)
    written = build(args.out_dir)
    print(f"wrote {len(written) - 1} documents and zhiku-acl.toml to {args.out_dir}")
    if args.scans:
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import scans

        print(f"wrote {len(scans.build(args.out_dir))} scanned documents to {args.out_dir / 'scans'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
