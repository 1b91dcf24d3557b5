// The widget manager that renders the saved widgets (@jupyter-widgets/html-manager 1.x)
// typesets widget labels with MathJax 2's `MathJax.Hub.Queue`; the book loads MathJax 3,
// which has no `Hub`, and every widget logged a TypeError. Map that one call onto MathJax 3.
(function () {
  function shim() {
    var mathjax = window.MathJax;
    if (mathjax && mathjax.version && !mathjax.Hub) {
      mathjax.Hub = {
        Queue: function (job) {
          if (Array.isArray(job) && job[0] === "Typeset" && mathjax.typesetPromise) {
            mathjax.typesetPromise(job[2] ? [job[2]] : undefined).catch(function () {});
          }
        },
      };
    }
  }
  shim();
  document.addEventListener("DOMContentLoaded", shim);
})();
