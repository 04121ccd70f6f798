"""Every prompt Zhiku sends to a language model, English and Chinese side by side.

They live together so they can be read, reviewed and tuned in one place; the modules that send
them own only the mechanics (budgets, parsing the reply). Each prompt states the contract the
code checks afterwards: ``[n]`` citations and the exact not-found phrase for answers, a JSON array
for triples, yes/no for the judges.
"""
from __future__ import annotations

#: The exact phrase an answer gives when the passages lack it; checked by ``says_not_found``.
NOT_FOUND = {"en": "not in the documents", "zh": "文档中没有相关信息"}

# ------------------------------------------------------------------------- grounded answers
ANSWER_INSTRUCTIONS = {
    "en": (
        "You answer questions about a company's documents using only the numbered passages and facts "
        "given. Cite the passage of every statement with its number in square brackets, like [1] or "
        "[2][3]. If the passages do not contain the answer, reply exactly: not in the documents. "
        "Be concise and answer in English."
    ),
    "zh": (
        "你根据公司文档回答问题，只能使用下面编号的段落和事实。每一句都要用方括号注明出处段落编号，"
        "例如 [1] 或 [2][3]。如果段落中没有答案，请只回答：文档中没有相关信息。请用中文简洁回答。"
    ),
}
ANSWER_HEADINGS = {
    "en": ("Passages:", "Facts from the knowledge graph:", "Question: ", "Answer:"),
    "zh": ("段落：", "知识图谱中的事实：", "问题：", "回答："),
}
#: How a numbered passage names its source (after the text: small models copy a header line).
SOURCE_LABEL = {"en": "Source", "zh": "来源"}

# ------------------------------------------------------------------------- follow-up questions
REWRITE_FOLLOWUP = (
    "Rewrite the user's last question so that it can be understood without the conversation: replace "
    "pronouns and vague references with what they refer to. Keep the question's language. Reply with "
    "the rewritten question only, on one line."
)

# ------------------------------------------------------------------------- document summaries
SUMMARY = {
    "en": {
        "map": "Summarise this part of a document in at most four sentences. Use only what the text says.",
        "whole": (
            "Summarise this document using only what the text says. Reply in this form:\n"
            "SUMMARY: three to five sentences\nKEY POINTS:\n- one point per line (three to six points)"
        ),
        "reduce": (
            "Combine these partial summaries of one document. Reply in this form:\n"
            "SUMMARY: three to five sentences\nKEY POINTS:\n- one point per line (three to six points)"
        ),
        "title": "Document",
        "part": "Text",
        "partials": "Partial summaries",
    },
    "zh": {
        "map": "用不超过四句话的中文概括这部分文档，只使用原文中的信息。",
        "whole": "用中文概括这份文档，只使用原文中的信息。按以下格式回答：\n摘要：三到五句话\n要点：\n- 每行一个要点（三到六个）",
        "reduce": "把下面同一文档的各部分摘要合并。按以下格式用中文回答：\n摘要：三到五句话\n要点：\n- 每行一个要点（三到六个）",
        "title": "文档",
        "part": "正文",
        "partials": "各部分摘要",
    },
}

# ------------------------------------------------------------------------- judges
#: The LLM reranker: is a passage relevant to the question?
JUDGE_RELEVANCE = (
    "Question: {query}\n\nPassage:\n{passage}\n\n"
    "Does the passage contain information that helps answer the question? Answer only yes or no.\nAnswer:"
)
#: The answer evaluation: is a statement supported by the passage it cites?
JUDGE_SUPPORT = (
    "Passage:\n{passage}\n\nStatement: {statement}\n\n"
    "Is the statement supported by the passage? Answer only yes or no.\nAnswer:"
)

# ------------------------------------------------------------------------- knowledge graph
EXTRACT_TRIPLES = """Extract the facts stated in the text below as knowledge-graph triples.
Answer with a JSON array only, no prose. Each triple is a list:
[subject, relation, object, subject type, object type]
- subject and object: named things (people, organisations, departments, places, products, dates)
  written exactly as in the text;
- types: PERSON, ORG, GPE, PRODUCT, DATE or OTHER;
- relation: a short phrase in the language of the text (e.g. "CEO of", "located in", "负责").

Example text: Ana Silva, the CFO of Blue Harbor, works in Lisbon. 李强负责销售部。
Example answer: [["Ana Silva", "CFO of", "Blue Harbor", "PERSON", "ORG"], ["Ana Silva", "works in", "Lisbon", "PERSON", "GPE"], ["李强", "负责", "销售部", "PERSON", "ORG"]]

Text:
{text}

JSON:"""

EXTRACT_TRIPLES_RETRY = """Your answer was not a valid JSON array of triples. Answer again with ONLY a JSON array of
lists like [["subject", "relation", "object", "PERSON", "ORG"]], or [] if the text states no fact.

Text:
{text}

JSON:"""

# ------------------------------------------------------------------------- evaluation questions
WRITE_QUESTION = (
    "Write one question that the passage below answers, and its short answer (a few words), in the "
    "language of the passage. The question must make sense on its own, without seeing the passage.\n"
    'Reply with JSON only: {{"question": "...", "answer": "..."}}\n\nPassage:\n{passage}\n\nJSON:'
)
